"""The bundle signing key (Ed25519) and its public half: the SDK's one signing mechanism
(:mod:`stella_orchestrator.signing`), re-exported where the audit service looks for it."""

from stella_orchestrator.signing import (
    ALGORITHM,
    KeyFormatError,
    Signer,
    generate_private_pem,
    key_id_of,
    load_public_key,
    public_pem,
)

__all__ = [
    "ALGORITHM",
    "KeyFormatError",
    "Signer",
    "generate_private_pem",
    "key_id_of",
    "load_public_key",
    "public_pem",
]
