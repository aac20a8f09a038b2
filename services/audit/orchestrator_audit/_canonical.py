"""The chained form of an event and the chain hash.

``hash = sha256(prev_hash || canonical_json(event))`` where ``prev_hash`` is the 32 raw bytes
of the previous link's hash (32 zero bytes before a tenant's first event) and
``canonical_json`` is RFC 8785 (the ``rfc8785`` package). The event is the ledger row as a
JSON object: every column, ids as lowercase strings, times as RFC 3339 UTC with microseconds,
``actor`` as ``{subject, scopes}``. Bundles carry exactly these objects, so verification
needs nothing but the bundle.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from stella_orchestrator.signing import canonical

GENESIS_HASH: Final = "0" * 64
"""prev_hash of a tenant's first link."""


def format_time(value: datetime | None) -> str | None:
    """RFC 3339 UTC with microseconds and ``Z`` (fixed width, so text order = time order)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value) if isinstance(value, uuid.UUID) else value


def event_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The chained JSON object of one ``orchestrator.events`` row."""
    return {
        "seq": int(row["seq"]),
        "event_id": _text(row["event_id"]),
        "tenant": row["tenant"],
        "type": row["type"],
        "occurred_at": format_time(row["occurred_at"]),
        "idempotency_key": row["idempotency_key"],
        "correlation_id": row["correlation_id"],
        "project": row["project"],
        "actor": {"subject": row["actor_subject"], "scopes": list(row["actor_scopes"] or [])},
        "job_id": _text(row["job_id"]),
        "job_type": row["job_type"],
        "run_id": _text(row["run_id"]),
        "source_id": _text(row["source_id"]),
        "from_state": row["from_state"],
        "to_state": row["to_state"],
        "reason": row["reason"],
        "attempt": row["attempt"],
        "lease_id": _text(row["lease_id"]),
        "data": row["data"] if row["data"] is not None else {},
    }


def chain_hash(prev_hash: str, document: Mapping[str, Any]) -> str:
    """The link hash of ``document`` after ``prev_hash`` (lowercase hex)."""
    digest = hashlib.sha256(bytes.fromhex(prev_hash))
    digest.update(canonical(document))
    return digest.hexdigest()
