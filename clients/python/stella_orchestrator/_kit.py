"""Configuration kits: a tenant's configuration as a deterministic, signed archive.

A kit is a tar (:func:`stella_orchestrator.signing.tar_bytes`) of:

* ``config/<kind>.jsonl`` for each kind in :data:`KINDS`: one RFC 8785 canonical JSON record
  per line, sorted by the record's natural key (a source's or schedule's name, a quota's job
  type, a bucket's host, a webhook's URL and description, a blackout's whole record). No
  server-assigned id, tenant, time stamp or secret is in a record; references to a source
  are by its name, so a kit applies to a database where the ids differ;
* ``audit/bundle.tar``: optionally, the audit service's own signed bundle of a time range;
* ``manifest.json``: schema, source tenant, every file's sha256, size and record count;
* ``manifest.dsse.json``: a DSSE envelope over an in-toto Statement v1 whose subjects are
  all the other files, signed with Ed25519 (the audit bundles' mechanism).

Nothing in a kit depends on when it was written, so the same configuration gives the same
bytes. :func:`verify_kit` checks a kit with nothing but its bytes and a public key, and names
each failure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stella_orchestrator.signing import (
    SignedArchive,
    Signer,
    canonical,
    check_statement,
    json_object,
    read_tar,
    sign_envelope,
    statement,
    tar_bytes,
    verify_envelope,
)

KIT_SCHEMA: Final = "stella.orchestrator.config-kit/v1"
PREDICATE_TYPE: Final = "https://stella-ops.org/orchestrator/config-kit/v1"
MANIFEST, ENVELOPE = "manifest.json", "manifest.dsse.json"
AUDIT_BUNDLE: Final = "audit/bundle.tar"

# The fields of each kind's records and their JSON types (as json.loads gives them); the
# first field of KEYS[kind] is the record's natural key. Proto JSON renders int64 and
# Duration as strings and enums by name; "source" is a source's name (null: none).
_STR, _BOOL, _INT, _NUM = str, bool, int, (int, float)
_OPT_STR = (str, type(None))
FIELDS: Final[dict[str, dict[str, Any]]] = {
    "sources": {
        "name": _STR,
        "source_type": _STR,
        "host": _STR,
        "base_url": _STR,
        "enabled": _BOOL,
        "paused": _BOOL,
        "paused_reason": _STR,
        "paused_ticket": _STR,
        "job_types": list,
        "labels": dict,
        "max_active": _INT,
    },
    "schedules": {
        "name": _STR,
        "cron": _STR,
        "source": _OPT_STR,
        "run_template": dict,
        "catch_up": _STR,
        "overlap": _STR,
        "catch_up_window": _OPT_STR,
        "enabled": _BOOL,
    },
    "quotas": {
        "job_type": _STR,
        "max_active": _INT,
        "max_per_hour": _INT,
        "burst": _INT,
        "max_queued": _INT,
        "paused": _BOOL,
        "reason": _STR,
        "ticket": _STR,
    },
    "buckets": {"host": _STR, "capacity": _STR, "refill_per_second": _NUM},
    "blackouts": {
        "source": _OPT_STR,
        "start": _OPT_STR,
        "end": _OPT_STR,
        "recurrence": (dict, type(None)),
        "reason": _STR,
        "ticket": _STR,
    },
    "webhooks": {
        "url": _STR,
        "description": _STR,
        "event_types": list,
        "source": _OPT_STR,
        "job_type": _STR,
        "enabled": _BOOL,
    },
}
KINDS: Final = tuple(FIELDS)
"""In the order they are applied: sources first, since the others name them."""


def record_key(kind: str, record: Mapping[str, Any]) -> str:
    """The natural key of a record: what identifies it across databases."""
    if kind == "sources" or kind == "schedules":
        return str(record["name"])
    if kind == "quotas":
        return str(record["job_type"])
    if kind == "buckets":
        return str(record["host"])
    if kind == "webhooks":
        return canonical([record["url"], record["description"]]).decode()
    return canonical(dict(record)).decode()


def config_file(kind: str) -> str:
    return f"config/{kind}.jsonl"


def sorted_records(kind: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return sorted((dict(r) for r in records), key=lambda r: record_key(kind, r))


Kit = SignedArchive
"""An exported kit: the archive and its manifest."""


def build_kit(
    tenant: str,
    config: Mapping[str, Sequence[Mapping[str, Any]]],
    signer: Signer,
    *,
    audit_bundle: bytes | None = None,
    audit_range: Mapping[str, str] | None = None,
) -> Kit:
    """Builds the archive of a configuration (pure: same inputs, same bytes)."""
    files: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    for kind in KINDS:
        records = sorted_records(kind, config.get(kind, ()))
        files[config_file(kind)] = b"".join(canonical(r) + b"\n" for r in records)
        counts[config_file(kind)] = len(records)
    if audit_bundle is not None:
        files[AUDIT_BUNDLE] = audit_bundle
        counts[AUDIT_BUNDLE] = 1
    manifest: dict[str, Any] = {
        "schema": KIT_SCHEMA,
        "tenant": tenant,
        "files": [
            {
                "path": name,
                "sha256": hashlib.sha256(files[name]).hexdigest(),
                "size_bytes": len(files[name]),
                "count": counts[name],
            }
            for name in sorted(files)
        ],
        "audit": dict(audit_range) if audit_bundle is not None and audit_range else None,
        "key_id": signer.key_id,
    }
    files[MANIFEST] = canonical(manifest)
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    payload = canonical(statement(digests, PREDICATE_TYPE, {"manifest": MANIFEST}))
    files[ENVELOPE] = sign_envelope(payload, signer)
    return Kit(tar_bytes(files), manifest)


@dataclass
class KitVerdict:
    """Outcome of :func:`verify_kit`: ``problems`` is empty when everything holds."""

    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    config: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    audit_bundle: bytes | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_kit(archive: bytes, keys: Sequence[Ed25519PublicKey] | None) -> KitVerdict:
    """Checks a kit: the archive, the signature, the manifest and the schema of every record.

    Args:
        archive: The kit's bytes.
        keys: Trusted public keys (None skips the signature check, not the rest).

    Returns:
        The verdict; its ``config`` is filled only when there is no problem.
    """
    required = (*(config_file(k) for k in KINDS), MANIFEST, ENVELOPE)
    files, problems = read_tar(archive, required, optional_prefix="audit/")
    verdict = KitVerdict(problems)
    for name in sorted(files):
        if name.startswith("audit/") and name != AUDIT_BUNDLE:
            problems.append(f"archive: unexpected member {name!r}")
    if ENVELOPE in files:
        stmt = verify_envelope(files[ENVELOPE], keys, problems, name=ENVELOPE)
        if stmt is not None:
            signed = sorted(set(files) - {ENVELOPE})
            check_statement(stmt, files, signed, PREDICATE_TYPE, problems, name=ENVELOPE)
            covered = {str(s.get("name")) for s in stmt.get("subject") or [] if isinstance(s, dict)}
            for signed_name in sorted(covered - set(files)):
                problems.append(f"archive: {signed_name} is signed but missing")
    if MANIFEST in files:
        verdict.manifest = _check_manifest(files, problems)
    for kind in KINDS:
        name = config_file(kind)
        if name in files:
            verdict.config[kind] = _parse_records(kind, files[name], problems)
    verdict.audit_bundle = files.get(AUDIT_BUNDLE)
    if problems:
        verdict.config = {}
    return verdict


def _check_manifest(files: Mapping[str, bytes], problems: list[str]) -> dict[str, Any] | None:
    manifest = json_object(files[MANIFEST], problems, name=MANIFEST)
    if manifest is None:
        return None
    if manifest.get("schema") != KIT_SCHEMA:
        problems.append(
            f"{MANIFEST}: schema is {manifest.get('schema')!r}, expected {KIT_SCHEMA!r}"
        )
    listed = {str(e.get("path")): e for e in manifest.get("files") or [] if isinstance(e, dict)}
    for name in sorted(set(files) - {MANIFEST, ENVELOPE}):
        entry = listed.get(name)
        if entry is None:
            problems.append(f"{MANIFEST}: does not list {name}")
            continue
        actual = hashlib.sha256(files[name]).hexdigest()
        if entry.get("sha256") != actual or entry.get("size_bytes") != len(files[name]):
            problems.append(f"{name}: sha256 {actual} does not match the manifest")
    for missing in sorted(set(listed) - set(files)):
        problems.append(f"archive: {missing} is listed in the manifest but missing")
    return manifest


def _parse_records(kind: str, data: bytes, problems: list[str]) -> list[dict[str, Any]]:
    name = config_file(kind)
    fields = FIELDS[kind]
    records: list[dict[str, Any]] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        where = f"{name} line {number}"
        record = json_object(raw, problems, name=where)
        if record is None:
            continue
        missing, extra = sorted(set(fields) - set(record)), sorted(set(record) - set(fields))
        if missing or extra:
            problems.append(f"{where}: schema: missing fields {missing}, unknown fields {extra}")
            continue
        for key, kind_type in fields.items():
            value = record[key]
            if not isinstance(value, kind_type) or (kind_type is _INT and isinstance(value, bool)):
                problems.append(f"{where}: schema: {key} is {type(value).__name__} {value!r}")
        if canonical(record) != raw:
            problems.append(f"{where}: not canonical JSON (RFC 8785)")
        records.append(record)
    keys = [record_key(kind, r) for r in records]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        problems.append(f"{name}: records are not sorted by key, or a key appears twice")
    return records


def changed_fields(want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    """The fields whose values differ, in field order."""
    return [key for key in want if want.get(key) != have.get(key)]
