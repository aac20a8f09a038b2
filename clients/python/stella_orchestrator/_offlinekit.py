"""Offline install kits (``make offline-kit``): what an air-gapped site needs, checksummed and
signed.

A kit is a directory (``make offline-kit`` also packs it into a deterministic tar) holding
the container image archive (``image/``), a wheelhouse of the locked Python dependencies and
the project's wheel (``wheels/`` with ``requirements/runtime.txt``), the rendered base
manifests plus the kustomize sources and binary to render an overlay with the site's own keys
(``manifests/``, ``deploy/``, ``tools/``), and three files written by :func:`seal`:

* ``SHA256SUMS``: ``sha256sum -c`` format, every other file, sorted by path;
* ``kit-manifest.json``: schema, version and every file's sha256 and size;
* ``kit-manifest.dsse.json``: a DSSE envelope over an in-toto Statement v1 whose subjects are
  ``SHA256SUMS`` and ``kit-manifest.json``, signed with Ed25519 (the audit bundles' mechanism,
  :mod:`stella_orchestrator.signing`).

:func:`verify_install_kit` checks the signature, then every file against the signed manifest,
and names each file that is missing, extra or altered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stella_orchestrator.signing import (
    Signer,
    canonical,
    check_statement,
    sign_envelope,
    statement,
    verify_envelope,
)

INSTALL_KIT_SCHEMA: Final = "stella.orchestrator.offline-kit/v1"
PREDICATE_TYPE: Final = "https://stella-ops.org/orchestrator/offline-kit/v1"
SUMS, MANIFEST, ENVELOPE = "SHA256SUMS", "kit-manifest.json", "kit-manifest.dsse.json"
SEALS: Final = (SUMS, MANIFEST, ENVELOPE)
_CHUNK_BYTES: Final = 1 << 20


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks (image archives are large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _contents(root: Path) -> list[str]:
    """Every regular file under ``root`` but the seals, as sorted POSIX paths."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).as_posix() not in SEALS
    )


def seal(root: Path, version: str, signer: Signer) -> dict[str, Any]:
    """Writes SHA256SUMS, the manifest and its signed envelope for the files under ``root``.

    Returns:
        The manifest.
    """
    files = [
        {
            "path": name,
            "sha256": file_sha256(root / name),
            "size_bytes": (root / name).stat().st_size,
        }
        for name in _contents(root)
    ]
    sums = "".join(f"{f['sha256']}  {f['path']}\n" for f in files).encode()
    manifest = {
        "schema": INSTALL_KIT_SCHEMA,
        "version": version,
        "files": files,
        "key_id": signer.key_id,
    }
    manifest_bytes = canonical(manifest)
    digests = {
        SUMS: hashlib.sha256(sums).hexdigest(),
        MANIFEST: hashlib.sha256(manifest_bytes).hexdigest(),
    }
    payload = canonical(statement(digests, PREDICATE_TYPE, {"manifest": MANIFEST}))
    (root / SUMS).write_bytes(sums)
    (root / MANIFEST).write_bytes(manifest_bytes)
    (root / ENVELOPE).write_bytes(sign_envelope(payload, signer))
    return manifest


def verify_install_kit(root: Path, keys: Sequence[Ed25519PublicKey]) -> list[str]:
    """Checks an install kit directory; returns one message per problem (none: it holds)."""
    problems: list[str] = []
    seals: dict[str, bytes] = {}
    for name in SEALS:
        try:
            seals[name] = (root / name).read_bytes()
        except OSError:
            problems.append(f"{name} is missing")
    if problems:
        return problems
    stmt = verify_envelope(seals[ENVELOPE], keys, problems, name=ENVELOPE)
    if stmt is not None:
        check_statement(stmt, seals, (SUMS, MANIFEST), PREDICATE_TYPE, problems, name=ENVELOPE)
    if problems:
        return problems  # nothing below can be trusted without the signature
    manifest = json.loads(seals[MANIFEST])
    listed = {f["path"]: f for f in manifest.get("files", [])}
    expected_sums = "".join(f"{f['sha256']}  {f['path']}\n" for f in listed.values()).encode()
    if expected_sums != seals[SUMS]:
        problems.append(f"{SUMS} does not match {MANIFEST}")
    present = set(_contents(root))
    for name in sorted(set(listed) - present):
        problems.append(f"{name} is missing")
    for name in sorted(present - set(listed)):
        problems.append(f"{name} is not in the signed manifest")
    for name in sorted(set(listed) & present):
        actual = file_sha256(root / name)
        if actual != listed[name]["sha256"]:
            problems.append(f"{name}: sha256 {actual} does not match the signed manifest")
    return problems
