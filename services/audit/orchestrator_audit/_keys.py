"""The bundle signing key (Ed25519) and its public half."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "ed25519"
# Local development only: a fixed key so bundles verify across restarts without set-up.
# Production sets ORCH_AUDIT_SIGNING_KEY_FILE: beyond loopback the service refuses to start
# without it (unless ORCH_INSECURE_DEV=1); on loopback it logs a warning.
_DEV_SEED = hashlib.sha256(b"stella-orchestrator development audit signing key").digest()


class KeyFormatError(ValueError):
    """A key file or PEM is not an Ed25519 key."""


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """The key id: lowercase hex sha256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> str:
    """SubjectPublicKeyInfo PEM text."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Parses a PEM public key.

    Raises:
        KeyFormatError: Not a PEM Ed25519 public key.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise KeyFormatError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFormatError(f"public key is {type(key).__name__}, expected Ed25519")
    return key


@dataclass(frozen=True)
class Signer:
    """Signs bundle statements."""

    private_key: Ed25519PrivateKey

    @classmethod
    def from_pem(cls, pem: bytes) -> Signer:
        """Loads an unencrypted PKCS#8 PEM Ed25519 private key.

        Raises:
            KeyFormatError: Not such a key.
        """
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFormatError(f"private key is {type(key).__name__}, expected Ed25519")
        return cls(key)

    @classmethod
    def development(cls) -> Signer:
        """The fixed development key (never for production)."""
        return cls(Ed25519PrivateKey.from_private_bytes(_DEV_SEED))

    @property
    def is_development(self) -> bool:
        """True for the fixed development key, which anyone can read in the source."""
        return self.private_key.private_bytes_raw() == _DEV_SEED

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    @property
    def public_key_pem(self) -> str:
        return public_pem(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def generate_private_pem() -> bytes:
    """A new PKCS#8 PEM Ed25519 private key."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
