"""Deterministic, signed audit bundles.

A bundle is a tar (ustar, members sorted by name, mtime 0, owner 0:0, mode 0644) of:

* ``jobs.jsonl``      final job records (:func:`job_record`), by job id;
* ``history.jsonl``   the chained events of the scope by seq: ``{event, prev_hash, hash}``;
* ``throttles.jsonl`` throttle changes of the scope, by (created_at, id), free text redacted;
* ``manifest.json``   tenant, scope, counts, sha256 of every file, chain head and anchor;
* ``manifest.dsse.json`` a DSSE envelope (payload type ``application/vnd.in-toto+json``)
  over an in-toto Statement v1 whose subjects are the four files above, signed with Ed25519.

Every line and both JSON documents are RFC 8785 canonical JSON and the manifest carries no
time of export, so the same scope over the same data gives byte-identical archives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from orchestrator_audit._canonical import canonical, event_document, format_time
from orchestrator_core.redaction import redact_text
from orchestrator_pg import ExportData, ExportScope
from stella_orchestrator.signing import SignedArchive, Signer, sign_envelope, tar_bytes
from stella_orchestrator.signing import statement as signing_statement

BUNDLE_SCHEMA: Final = "stella.orchestrator.audit-bundle/v1"
PREDICATE_TYPE: Final = "https://stella-ops.org/orchestrator/audit-bundle/v1"
MEDIA_TYPE: Final = "application/x-tar"
JOBS, HISTORY, THROTTLES = "jobs.jsonl", "history.jsonl", "throttles.jsonl"
MANIFEST, ENVELOPE = "manifest.json", "manifest.dsse.json"
DATA_FILES: Final = (HISTORY, JOBS, THROTTLES)
ALL_FILES: Final = tuple(sorted((*DATA_FILES, MANIFEST, ENVELOPE)))


def _text(value: Any) -> Any:
    return None if value is None else str(value)


def job_record(
    *,
    job_id: str,
    tenant: str,
    job_type: str | None,
    run_id: str | None,
    source_id: str | None,
    state: str,
    reason: str | None,
    attempt: int,
    max_attempts: int | None,
    lease_id: str | None,
    payload_digest: str | None,
) -> dict[str, Any]:
    """A final job record: the fields the event history determines (``replay`` rebuilds
    exactly these). ``lease_id`` is set only while the job is leased."""
    return {
        "id": job_id,
        "tenant": tenant,
        "job_type": job_type,
        "run_id": run_id,
        "source_id": source_id,
        "state": state,
        "reason": reason,
        "attempt": attempt,
        "max_attempts": max_attempts,
        "lease_id": lease_id if state == "leased" else None,
        "payload_digest": payload_digest,
    }


def job_record_of_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The final job record of a ``orchestrator.jobs`` row."""
    return job_record(
        job_id=str(row["id"]),
        tenant=row["tenant"],
        job_type=row["job_type"],
        run_id=_text(row["run_id"]),
        source_id=_text(row["source_id"]),
        state=row["state"],
        reason=row["reason"],
        attempt=int(row["attempt"]),
        max_attempts=int(row["max_attempts"]),
        lease_id=_text(row["lease_id"]),
        payload_digest=row["payload_digest"],
    )


def throttle_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One throttle change, free text redacted."""
    return {
        "id": str(row["id"]),
        "tenant": row["tenant"],
        "source_id": _text(row["source_id"]),
        "job_id": _text(row.get("job_id")),
        "host": row["host"],
        "origin": row["origin"],
        "refill_per_second": row["refill_per_second"],
        "capacity": row["capacity"],
        "effective_refill_per_second": row["effective_refill_per_second"],
        "paused_until": format_time(row["paused_until"]),
        "reason": redact_text(row["reason"]),
        "ticket": redact_text(row["ticket"]),
        "created_by": row["created_by"],
        "created_at": format_time(row["created_at"]),
        "expires_at": format_time(row["expires_at"]),
    }


def history_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One chained event with its link."""
    return {
        "event": event_document(row),
        "prev_hash": row["chain_prev_hash"],
        "hash": row["chain_hash"],
    }


def jsonl(records: Iterable[Mapping[str, Any]]) -> bytes:
    """Canonical JSON lines, each ending in a newline."""
    return b"".join(canonical(record) + b"\n" for record in records)


def scope_document(scope: ExportScope) -> dict[str, Any]:
    if scope.run_id is not None:
        return {"run_id": str(scope.run_id)}
    if scope.source_id is not None:
        return {"source_id": str(scope.source_id)}
    return {"time_range": {"start": format_time(scope.start), "end": format_time(scope.end)}}


Bundle = SignedArchive
"""An exported bundle: the archive and its manifest."""


def file_entry(path: str, data: bytes, count: int) -> dict[str, Any]:
    return {
        "path": path,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "count": count,
    }


def build_bundle(tenant: str, scope: ExportScope, data: ExportData, signer: Signer) -> Bundle:
    """Builds the archive of one export (pure: same inputs, same bytes)."""
    jobs = [job_record_of_row(row) for row in data.jobs]
    history = [history_record(row) for row in data.events]
    throttles = [throttle_record(row) for row in data.throttles]
    contents = {JOBS: jsonl(jobs), HISTORY: jsonl(history), THROTTLES: jsonl(throttles)}
    counts = {JOBS: len(jobs), HISTORY: len(history), THROTTLES: len(throttles)}
    head = {"seq": history[-1]["event"]["seq"], "hash": history[-1]["hash"]} if history else None
    anchor = (
        {
            "seq": int(data.anchor["seq"]),
            "hash": data.anchor["hash"],
            "anchored_at": format_time(data.anchor["anchored_at"]),
        }
        if data.anchor
        else None
    )
    manifest: dict[str, Any] = {
        "schema": BUNDLE_SCHEMA,
        "tenant": tenant,
        "scope": scope_document(scope),
        "counts": counts,
        "files": [file_entry(name, contents[name], counts[name]) for name in sorted(contents)],
        "chain": {
            "head": head,
            "anchor": anchor,
            # a time window holds every event of the tenant in it: links must follow on
            "contiguous": scope.run_id is None and scope.source_id is None,
        },
        "key_id": signer.key_id,
    }
    manifest_bytes = canonical(manifest)
    contents[MANIFEST] = manifest_bytes
    contents[ENVELOPE] = envelope_bytes(contents, signer)
    return Bundle(tar_bytes(contents), manifest)


def statement(files: Mapping[str, bytes], names: Sequence[str]) -> dict[str, Any]:
    """The in-toto Statement v1 over the named files."""
    return signing_statement(
        {name: hashlib.sha256(files[name]).hexdigest() for name in names},
        PREDICATE_TYPE,
        {"manifest": MANIFEST, "schema": BUNDLE_SCHEMA},
    )


def envelope_bytes(files: Mapping[str, bytes], signer: Signer) -> bytes:
    """The DSSE envelope over the statement of the data files and the manifest."""
    return sign_envelope(canonical(statement(files, (*DATA_FILES, MANIFEST))), signer)
