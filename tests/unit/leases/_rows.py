"""A leased job row as the claim returns it, for the leases unit tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


def lease_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "id": uuid.uuid4(),
        "run_id": None,
        "tenant": "acme",
        "project": "",
        "job_type": "feed.fetch",
        "key": "",
        "lease_id": uuid.uuid4(),
        "lease_expires_at": datetime(2030, 1, 1, tzinfo=UTC),
        "attempt": 1,
        "max_attempts": 3,
        "idempotency_key": None,
        "correlation_id": "c-1",
        "payload": {"url": "https://example.org"},
        "payload_digest": "sha256:" + "0" * 64,
        "trace_parent": "",
        "trace_state": "",
        "event_window_start": None,
        "event_window_end": None,
        "source_id": None,
    }
    row.update(overrides)
    return row
