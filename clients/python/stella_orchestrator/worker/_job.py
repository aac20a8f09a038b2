"""Plain-Python views of the wire messages a handler sees: :class:`Job` (an Assignment) and
:class:`ArtifactRecord`; plus the JSON ↔ ``google.protobuf.Struct`` conversions.

Struct carries every number as a double, so integral values come back as ``int`` (within the
2**53 range doubles hold exactly): a payload submitted as ``{"page": 3}`` reads ``3``, not
``3.0``. Canonical JSON prints both the same way, so digests do not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf import struct_pb2, timestamp_pb2

from stella.orchestrator.v1 import leases_pb2

_MAX_EXACT_INT: Final = 2**53


def _from_value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return from_struct(value.struct_value)
    if kind == "list_value":
        return [_from_value(v) for v in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        if number.is_integer() and abs(number) <= _MAX_EXACT_INT:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A ``Struct`` as a plain dict (integral numbers as ``int``)."""
    return {key: _from_value(value) for key, value in struct.fields.items()}


def to_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """A JSON-like mapping as a ``Struct``.

    Raises:
        ValueError: A value has no JSON form (the message names the type).
    """
    struct = struct_pb2.Struct()
    try:
        struct.update(value)
    except (TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"not a JSON object ({exc})") from exc
    return struct


def _time(ts: timestamp_pb2.Timestamp, present: bool) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if present else None


@dataclass(frozen=True)
class Job:
    """One leased job as its handler sees it (a view of a ``stella.orchestrator.v1.Assignment``).

    Attributes:
        id: Job id.
        run_id: Run of the job; ``""`` for a standalone job.
        tenant: Tenant the job belongs to.
        project: Project inside the tenant, or ``""``.
        job_type: Job type that selected the handler.
        key: Run-local name of the job, or ``""``.
        attempt: Attempt number of this lease, from 1.
        max_attempts: Attempts the retry policy allows.
        idempotency_key: Pass it to upstream side effects so retries do not repeat them.
        correlation_id: Put it in logs.
        payload: Input of the job (JSON object).
        payload_digest: ``sha256:`` digest of the canonical JSON of the payload.
        lease_id: Fencing token of this lease (the SDK presents it in every report).
        lease_expires_at: When the lease expires unless heartbeats extend it (UTC).
        trace_parent: W3C ``traceparent`` to join the job's trace.
        trace_state: W3C ``tracestate``.
        event_time_window: ``(start, end)`` event-time window (UTC) or ``None``.
        source_id: Source the job works on, or ``""``.
    """

    id: str
    run_id: str
    tenant: str
    project: str
    job_type: str
    key: str
    attempt: int
    max_attempts: int
    idempotency_key: str
    correlation_id: str
    payload: dict[str, Any] = field(repr=False)  # payloads never reach logs through repr
    payload_digest: str
    lease_id: str
    lease_expires_at: datetime | None
    trace_parent: str = ""
    trace_state: str = ""
    event_time_window: tuple[datetime, datetime] | None = None
    source_id: str = ""

    @classmethod
    def from_assignment(cls, assignment: leases_pb2.Assignment) -> Job:
        """Build the view of an ``Assignment`` message.

        Args:
            assignment: The message the server pushed.

        Returns:
            The job.
        """
        window = None
        if assignment.HasField("event_time_window"):
            w = assignment.event_time_window
            start = _time(w.start, w.HasField("start"))
            end = _time(w.end, w.HasField("end"))
            if start is not None and end is not None:
                window = (start, end)
        return cls(
            id=assignment.job_id,
            run_id=assignment.run_id,
            tenant=assignment.tenant,
            project=assignment.project,
            job_type=assignment.job_type,
            key=assignment.key,
            attempt=assignment.attempt,
            max_attempts=assignment.max_attempts,
            idempotency_key=assignment.idempotency_key,
            correlation_id=assignment.correlation_id,
            payload=from_struct(assignment.payload),
            payload_digest=assignment.payload_digest,
            lease_id=assignment.lease_id,
            lease_expires_at=_time(
                assignment.lease_expires_at, assignment.HasField("lease_expires_at")
            ),
            trace_parent=assignment.trace_parent,
            trace_state=assignment.trace_state,
            event_time_window=window,
            source_id=assignment.source_id,
        )


@dataclass(frozen=True)
class ArtifactRecord:
    """An artifact the current job produced, as reported to the server.

    Attributes:
        name: Name, unique within the job (e.g. ``"advisories.ndjson"``).
        digest: ``"sha256:<lowercase hex>"`` of the bytes.
        size_bytes: Size of the content.
        media_type: IANA media type.
        uri: Where the bytes are stored (``""`` if the worker keeps none).
    """

    name: str
    digest: str
    size_bytes: int
    media_type: str = "application/octet-stream"
    uri: str = ""

    def to_proto(self, job_id: str, lease_id: str) -> leases_pb2.ArtifactRecord:
        return leases_pb2.ArtifactRecord(
            job_id=job_id,
            lease_id=lease_id,
            name=self.name,
            media_type=self.media_type,
            size_bytes=self.size_bytes,
            digest=self.digest,
            uri=self.uri,
        )
