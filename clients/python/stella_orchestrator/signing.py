"""Ed25519 keys, DSSE envelopes and deterministic tar archives: the one signing mechanism
of Stella Orchestrator.

Audit bundles (``orchestrator_audit``), configuration kits and offline install kits
(``stella orchestrator kit``) are all a deterministic tar (:func:`tar_bytes`) holding a DSSE
envelope (:func:`sign_envelope`, payload type ``application/vnd.in-toto+json``) over an
in-toto Statement v1 whose subjects are the other files; :func:`verify_envelope` checks one
with nothing but the envelope bytes and public keys. JSON is RFC 8785 canonical
(:func:`canonical`), so the same data gives the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ALGORITHM",
    "PAYLOAD_TYPE",
    "STATEMENT_TYPE",
    "KeyFormatError",
    "SignedArchive",
    "Signer",
    "canonical",
    "check_statement",
    "generate_private_pem",
    "json_object",
    "key_id_of",
    "load_public_key",
    "pae",
    "public_pem",
    "read_tar",
    "sign_envelope",
    "statement",
    "tar_bytes",
    "verify_envelope",
]

ALGORITHM: Final = "ed25519"
PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
# Local development only: a fixed key so bundles verify across restarts without set-up.
# Production sets ORCH_AUDIT_SIGNING_KEY_FILE: beyond loopback the audit service refuses to
# start without it (unless ORCH_INSECURE_DEV=1); on loopback it logs a warning.
_DEV_SEED = hashlib.sha256(b"stella-orchestrator development audit signing key").digest()


class KeyFormatError(ValueError):
    """A key file or PEM is not an Ed25519 key."""


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of a JSON value."""
    return rfc8785.dumps(value)


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
    """Signs statements with an Ed25519 private key."""

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


@dataclass(frozen=True)
class SignedArchive:
    """A deterministic, signed archive (an audit bundle or a kit) and its manifest."""

    archive: bytes
    manifest: dict[str, Any]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.archive).hexdigest()


def generate_private_pem() -> bytes:
    """A new PKCS#8 PEM Ed25519 private key."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def tar_bytes(files: Mapping[str, bytes]) -> bytes:
    """A deterministic ustar archive of ``files`` (sorted by name, mtime 0, owner 0:0 with no
    names, mode 0644), so the same files always give the same bytes."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def statement(
    digests: Mapping[str, str], predicate_type: str, predicate: Mapping[str, Any]
) -> dict[str, Any]:
    """The in-toto Statement v1 whose subjects are ``{name: sha256 hex}``."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": name, "digest": {"sha256": digests[name]}} for name in sorted(digests)
        ],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def sign_envelope(payload: bytes, signer: Signer) -> bytes:
    """The canonical DSSE envelope (payload type :data:`PAYLOAD_TYPE`) of ``payload``."""
    signature = signer.sign(pae(PAYLOAD_TYPE, payload))
    return canonical(
        {
            "payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode("ascii"),
            "signatures": [
                {"keyid": signer.key_id, "sig": base64.b64encode(signature).decode("ascii")}
            ],
        }
    )


def json_object(
    data: bytes, problems: list[str], *, name: str, what: str = "a JSON object"
) -> dict[str, Any] | None:
    """``data`` parsed as a JSON object, or None with the reason added to ``problems``."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: not valid JSON ({exc})")
        return None
    if not isinstance(value, dict):
        problems.append(f"{name}: not {what}")
        return None
    return value


def verify_envelope(
    envelope_bytes: bytes,
    keys: Sequence[Ed25519PublicKey] | None,
    problems: list[str],
    *,
    name: str,
) -> Any:
    """Checks a DSSE envelope; ``keys=None`` skips the signature (not the structure).

    Args:
        envelope_bytes: The envelope file.
        keys: Trusted public keys; one valid signature by any of them suffices.
        problems: Receives one message per failed check, each starting with ``name``.
        name: The envelope's file name, for the messages.

    Returns:
        The payload decoded as JSON (the statement), or None when it cannot be read.
    """
    envelope = json_object(envelope_bytes, problems, name=name, what="a DSSE envelope object")
    if envelope is None:
        return None
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        problems.append(
            f"{name}: payloadType is {envelope.get('payloadType')!r}, expected {PAYLOAD_TYPE!r}"
        )
    try:
        payload = base64.b64decode(str(envelope.get("payload", "")), validate=True)
    except (binascii.Error, ValueError):
        problems.append(f"{name}: payload is not valid base64")
        return None
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        problems.append(f"{name}: has no signatures")
    elif keys is not None:
        _check_signatures(
            payload, str(envelope.get("payloadType")), signatures, keys, problems, name
        )
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        problems.append(f"{name}: payload is not a JSON statement")
        return None


def _check_signatures(
    payload: bytes,
    payload_type: str,
    signatures: list[Any],
    keys: Sequence[Ed25519PublicKey],
    problems: list[str],
    name: str,
) -> None:
    message = pae(payload_type, payload)
    by_id = {key_id_of(key): key for key in keys}
    verified = failed = False
    for entry in signatures:
        keyid = str(entry.get("keyid", "")) if isinstance(entry, dict) else ""
        key = by_id.get(keyid)
        if key is None:
            continue
        try:
            key.verify(base64.b64decode(str(entry.get("sig", "")), validate=True), message)
            verified = True
        except (InvalidSignature, binascii.Error, ValueError):
            failed = True
            problems.append(
                f"{name}: signature by key {keyid} does not verify (the signature or "
                "the signed statement was altered)"
            )
    if not verified and not failed:
        wanted = ", ".join(sorted(by_id))
        signed_by = ", ".join(
            sorted(str(e.get("keyid", "?")) for e in signatures if isinstance(e, dict))
        )
        problems.append(
            f"{name}: no signature by the given key ({wanted}); signed by {signed_by} (wrong key?)"
        )


def check_statement(
    stmt: Any,
    files: Mapping[str, bytes],
    names: Sequence[str],
    predicate_type: str,
    problems: list[str],
    *,
    name: str,
) -> dict[str, Any] | None:
    """Checks that ``stmt`` is an in-toto Statement v1 of ``predicate_type`` whose subjects
    cover each of ``names`` present in ``files`` with its sha256.

    Returns:
        The statement's predicate (an empty dict if it has none), or None if ``stmt`` is not
        a statement.
    """
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE:
        problems.append(f"{name}: payload is not an in-toto Statement v1")
        return None
    if stmt.get("predicateType") != predicate_type:
        problems.append(f"{name}: predicateType is {stmt.get('predicateType')!r}")
    subjects = {
        s.get("name"): (s.get("digest") or {}).get("sha256")
        for s in stmt.get("subject") or []
        if isinstance(s, dict)
    }
    for member in names:
        if member not in files:
            continue
        actual = hashlib.sha256(files[member]).hexdigest()
        if member not in subjects:
            problems.append(f"{name}: the signed statement does not cover {member}")
        elif subjects[member] != actual:
            problems.append(
                f"{member}: sha256 {actual} does not match the signed statement "
                f"({subjects[member]})"
            )
    predicate = stmt.get("predicate")
    return predicate if isinstance(predicate, dict) else {}


def read_tar(
    archive: bytes, required: Sequence[str], optional_prefix: str | None = None
) -> tuple[dict[str, bytes], list[str]]:
    """The files of a deterministic archive (:func:`tar_bytes`) and the problems found with
    the archive itself: unreadable, a member that is not a regular file or appears twice,
    one of ``required`` missing, a member neither required nor under ``optional_prefix``,
    or bytes that differ from the deterministic archive of its files (named by offset and
    the member it falls in, so a flipped byte in a header or padding counts)."""
    problems: list[str] = []
    files: dict[str, bytes] = {}
    regions: list[tuple[int, int, int, str]] = []  # header start, data start, data end, name
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            for member in tar.getmembers():
                regions.append(
                    (
                        member.offset,
                        member.offset_data,
                        member.offset_data + member.size,
                        member.name,
                    )
                )
                if not member.isreg():
                    problems.append(f"archive: member {member.name!r} is not a regular file")
                    continue
                if member.name in files:
                    problems.append(f"archive: member {member.name!r} appears twice")
                handle = tar.extractfile(member)
                files[member.name] = handle.read() if handle else b""
    except (tarfile.TarError, EOFError, ValueError) as exc:
        return {}, [f"archive: not a readable tar file ({exc})"]
    for name in required:
        if name not in files:
            problems.append(f"archive: {name} is missing")
    for name in sorted(set(files) - set(required)):
        if optional_prefix and name.startswith(optional_prefix):
            continue
        problems.append(f"archive: unexpected member {name!r}")
    if not problems and tar_bytes(files) != archive:
        diff = next(
            (i for i, (a, b) in enumerate(zip(tar_bytes(files), archive, strict=False)) if a != b),
            min(len(archive), len(tar_bytes(files))),
        )
        problems.append(
            f"archive: bytes differ from the deterministic archive of its files at offset "
            f"{diff}, {_region(regions, diff)}"
        )
    return files, problems


def _region(regions: list[tuple[int, int, int, str]], offset: int) -> str:
    for header, start, end, name in regions:
        if header <= offset < start:
            return f"in the tar header of {name}"
        if start <= offset < end:
            return f"in the data of {name}"
        if end <= offset < start + ((end - start + 511) // 512) * 512:
            return f"in the padding after {name}"
    return "in the end-of-archive blocks"
