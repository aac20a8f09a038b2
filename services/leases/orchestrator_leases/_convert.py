"""Wire ↔ ledger translation: leased rows → Assignment messages, worker reports → ledger
records (with validation), ledger outcomes → ResultAck messages.

Per-job work is kept small on purpose (this runs for every job in both directions): no
generic JSON conversion for empty structs, timestamps set field by field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from orchestrator_core import InvalidArgument, Violations, payload_digest
from orchestrator_pg import Artifact, Completion, Failure, Heartbeat, Outcome, ProgressUpdate, Row
from stella.orchestrator.v1 import common_pb2, leases_pb2

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_NAME_CHARS = 256
MAX_TEXT_CHARS = 4096
MAX_WORKER_ID_CHARS = 256
JOB_TYPE_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,127}$")
# Sent when the job has no idempotency key of its own; stable across attempts of the job.
IDEMPOTENCY_KEY_PREFIX = "orch-"
INVALID_ARGUMENT = "invalid_argument"

_ERROR_CLASS_NAMES = {
    value: name.removeprefix("ERROR_CLASS_").lower()
    for name, value in common_pb2.ErrorClass.items()
}
_ERROR_CLASS_NAMES[common_pb2.ERROR_CLASS_UNSPECIFIED] = "other"


def _uuid(value: str, field: str, out: Violations) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        out.add(field, f"must be a UUID, got {value[:64]!r}")
        return uuid.UUID(int=0)


def _ts(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def error_class_name(value: int) -> str:
    """The lower-case label of an ErrorClass value (``http_429``; unknown → ``other``)."""
    return _ERROR_CLASS_NAMES.get(common_pb2.ErrorClass.ValueType(value), "other")


def assignment(row: Row) -> leases_pb2.Assignment:
    """One leased row as an Assignment. ``idempotency_key`` is the job's own key, or
    ``orch-{job_id}`` when it has none (stable across attempts)."""
    job_id = str(row["id"])
    msg = leases_pb2.Assignment(
        job_id=job_id,
        run_id=str(row["run_id"]) if row["run_id"] is not None else "",
        tenant=row["tenant"],
        project=row["project"],
        job_type=row["job_type"],
        key=row["key"],
        lease_id=str(row["lease_id"]),
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        idempotency_key=row["idempotency_key"] or IDEMPOTENCY_KEY_PREFIX + job_id,
        correlation_id=row["correlation_id"],
        payload_digest=row["payload_digest"],
        trace_parent=row["trace_parent"],
        trace_state=row["trace_state"],
        source_id=str(row["source_id"]) if row["source_id"] is not None else "",
    )
    msg.lease_expires_at.FromDatetime(row["lease_expires_at"])
    payload = row["payload"]
    if payload:
        msg.payload.update(payload)
    if row["event_window_start"] is not None:
        msg.event_time_window.start.FromDatetime(row["event_window_start"])
        if row["event_window_end"] is not None:
            msg.event_time_window.end.FromDatetime(row["event_window_end"])
    return msg


def ack(outcome: Outcome, kind: int) -> leases_pb2.ResultAck:
    """A ledger outcome as a ResultAck of ``kind``."""
    msg = leases_pb2.ResultAck(
        job_id=str(outcome.job_id),
        lease_id=str(outcome.lease_id),
        ok=outcome.ok,
        error_reason=outcome.error_reason,
        kind=kind,  # type: ignore[arg-type]
    )
    if outcome.lease_expires_at is not None:
        msg.lease_expires_at.FromDatetime(outcome.lease_expires_at)
    return msg


def invalid_ack(job_id: str, lease_id: str, kind: int) -> leases_pb2.ResultAck:
    """The ack of a malformed report on the Work stream (it is not applied)."""
    return leases_pb2.ResultAck(
        job_id=job_id,
        lease_id=lease_id,
        ok=False,
        error_reason=INVALID_ARGUMENT,
        kind=kind,  # type: ignore[arg-type]
    )


def _struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    if not value.fields:
        return {}
    result: dict[str, Any] = json_format.MessageToDict(value)
    return result


def _progress(progress: common_pb2.Progress, field: str, out: Violations) -> tuple[float, str]:
    if not 0.0 <= progress.percent <= 100.0:
        out.add(f"{field}.percent", "must be between 0 and 100")
    if len(progress.message) > MAX_TEXT_CHARS:
        out.add(f"{field}.message", f"must be at most {MAX_TEXT_CHARS} characters")
    return progress.percent, progress.message


def heartbeat(msg: leases_pb2.Heartbeat, field: str, out: Violations) -> Heartbeat:
    job_id = _uuid(msg.job_id, f"{field}.job_id", out)
    lease_id = _uuid(msg.lease_id, f"{field}.lease_id", out)
    if msg.HasField("progress"):
        percent, text = _progress(msg.progress, f"{field}.progress", out)
        return Heartbeat(job_id, lease_id, True, percent, text)
    return Heartbeat(job_id, lease_id)


def progress(msg: leases_pb2.ProgressReport, field: str, out: Violations) -> ProgressUpdate:
    job_id = _uuid(msg.job_id, f"{field}.job_id", out)
    lease_id = _uuid(msg.lease_id, f"{field}.lease_id", out)
    percent, text = _progress(msg.progress, f"{field}.progress", out)
    return ProgressUpdate(job_id, lease_id, percent, text)


def artifact(
    msg: leases_pb2.ArtifactRecord,
    field: str,
    out: Violations,
    owner: tuple[uuid.UUID, uuid.UUID] | None = None,
) -> Artifact:
    """An artifact record; inside a Completion (``owner``) empty ids mean the completion's."""
    if owner is not None and not msg.job_id and not msg.lease_id:
        job_id, lease_id = owner
    else:
        job_id = _uuid(msg.job_id, f"{field}.job_id", out)
        lease_id = _uuid(msg.lease_id, f"{field}.lease_id", out)
        if owner is not None and (job_id, lease_id) != owner:
            out.add(field, "must name the completion's job_id and lease_id (or neither)")
    if not msg.name or len(msg.name) > MAX_NAME_CHARS:
        out.add(f"{field}.name", f"must be 1 to {MAX_NAME_CHARS} characters")
    if len(msg.media_type) > MAX_NAME_CHARS:
        out.add(f"{field}.media_type", f"must be at most {MAX_NAME_CHARS} characters")
    if msg.size_bytes < 0:
        out.add(f"{field}.size_bytes", "must be >= 0")
    if not DIGEST_RE.match(msg.digest):
        out.add(f"{field}.digest", "must be 'sha256:' and 64 lowercase hex digits")
    if len(msg.uri) > MAX_TEXT_CHARS:
        out.add(f"{field}.uri", f"must be at most {MAX_TEXT_CHARS} characters")
    return Artifact(job_id, lease_id, msg.name, msg.digest, msg.size_bytes, msg.media_type, msg.uri)


def completion(msg: leases_pb2.Completion, field: str, out: Violations) -> Completion:
    job_id = _uuid(msg.job_id, f"{field}.job_id", out)
    lease_id = _uuid(msg.lease_id, f"{field}.lease_id", out)
    result = _struct_to_dict(msg.result)
    digest = msg.result_digest
    if digest and not DIGEST_RE.match(digest):
        out.add(f"{field}.result_digest", "must be empty or 'sha256:' and 64 lowercase hex")
    elif not digest and result:
        try:
            digest = payload_digest(result, f"{field}.result")
        except InvalidArgument as exc:
            out.items.extend(exc.violations)
    artifacts = tuple(
        artifact(a, f"{field}.artifacts[{i}]", out, (job_id, lease_id))
        for i, a in enumerate(msg.artifacts)
    )
    return Completion(job_id, lease_id, result, digest, artifacts)


def failure(msg: leases_pb2.Failure, field: str, out: Violations) -> Failure:
    job_id = _uuid(msg.job_id, f"{field}.job_id", out)
    lease_id = _uuid(msg.lease_id, f"{field}.lease_id", out)
    error = msg.error
    retry_after: float | None = None
    if error.HasField("retry_after"):
        retry_after = error.retry_after.seconds + error.retry_after.nanos / 1e9
        if retry_after < 0:
            out.add(f"{field}.error.retry_after", "must not be negative")
    return Failure(
        job_id,
        lease_id,
        error_class_name(error.error_class),
        error.message[:MAX_TEXT_CHARS],
        error.retryable,
        retry_after,
    )


def job_types(values: Sequence[str], field: str, out: Violations) -> list[str]:
    for i, value in enumerate(values):
        if not JOB_TYPE_RE.match(value):
            out.add(f"{field}[{i}]", f"must match {JOB_TYPE_RE.pattern}")
    return list(dict.fromkeys(values))
