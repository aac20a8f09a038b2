"""Throwaway Ed25519 key pairs for the tests of signed kits."""

from __future__ import annotations

from pathlib import Path

from stella_orchestrator.signing import Signer, generate_private_pem


def write_key_pairs(root: Path, *names: str) -> dict[str, Path]:
    """Writes ``<name>.pem`` (private, PKCS#8) and ``<name>.pub`` for each name under ``root``;
    returns ``{name: private path, name + ".pub": public path}``."""
    out: dict[str, Path] = {}
    for name in names:
        pem = generate_private_pem()
        (root / f"{name}.pem").write_bytes(pem)
        (root / f"{name}.pub").write_text(Signer.from_pem(pem).public_key_pem)
        out[name], out[f"{name}.pub"] = root / f"{name}.pem", root / f"{name}.pub"
    return out
