"""Ledger rows → protobuf messages (the only place that knows both shapes).

Reads are where stored data leaves for display (the CLI, the Console, grpcurl), so payloads,
labels and base URLs are redacted here (``orchestrator_core.redaction``); the ledger keeps
them as submitted and workers receive them unredacted from the leases service. Digests are of
the stored bytes, so they still verify the worker's copy.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from orchestrator_core.redaction import redact_text, redact_value
from orchestrator_grpckit import enum_label, enum_number
from orchestrator_pg import Row
from stella.orchestrator.v1 import common_pb2, events_pb2, resources_pb2

SCHEMA_VERSION = "orch.event.v1"
_JOB_STATE = common_pb2.JobState.DESCRIPTOR
_RUN_STATE = common_pb2.RunState.DESCRIPTOR


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp of ``value``."""
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def duration(value: timedelta) -> duration_pb2.Duration:
    """A protobuf Duration of ``value``."""
    out = duration_pb2.Duration()
    out.FromTimedelta(value)
    return out


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def _dur(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def _struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if value:
        s.update(value)
    return s


def _id(value: uuid.UUID | None) -> str:
    return str(value) if value is not None else ""


def job_state(name: str | None) -> int:
    return enum_number(_JOB_STATE, name) if name else common_pb2.JOB_STATE_UNSPECIFIED


def job_state_name(value: int) -> str:
    return enum_label(_JOB_STATE, value, unknown=None)


def run_state(name: str) -> int:
    return enum_number(_RUN_STATE, name)


def run_state_name(value: int) -> str:
    return enum_label(_RUN_STATE, value, unknown=None)


def error_class(name: str | None) -> int:
    if not name:
        return common_pb2.ERROR_CLASS_UNSPECIFIED
    try:
        return enum_number(common_pb2.ErrorClass.DESCRIPTOR, name)
    except KeyError:
        return common_pb2.ERROR_CLASS_OTHER


def source(row: Row) -> resources_pb2.Source:
    return resources_pb2.Source(
        id=_id(row["id"]),
        tenant=row["tenant"],
        name=row["name"],
        source_type=row["source_type"],
        host=row["host"],
        base_url=redact_text(row["base_url"]),
        enabled=row["enabled"],
        paused=row["paused"],
        paused_reason=row["paused_reason"],
        paused_ticket=row["paused_ticket"],
        job_types=row["job_types"],
        labels=redact_value(row["labels"]),
        created_at=_ts(row["created_at"]),
        updated_at=_ts(row["updated_at"]),
        version=row["version"],
        max_active=row["max_active"] or 0,
    )


def run(row: Row, counts: Mapping[str, int] | None = None) -> resources_pb2.Run:
    return resources_pb2.Run(
        id=_id(row["id"]),
        tenant=row["tenant"],
        project=row["project"],
        name=row["name"],
        source_id=_id(row["source_id"]),
        state=run_state(row["state"]),  # type: ignore[arg-type]
        correlation_id=row["correlation_id"],
        idempotency_key=row["idempotency_key"] or "",
        labels=redact_value(row["labels"]),
        job_counts=dict(counts or {}),
        created_at=_ts(row["created_at"]),
        started_at=_ts(row["started_at"]),
        finished_at=_ts(row["finished_at"]),
        schedule_id=_id(row["schedule_id"]),
        backfill_id=_id(row["backfill_id"]),
    )


def job(row: Row, parents: Sequence[uuid.UUID] = ()) -> resources_pb2.Job:
    msg = resources_pb2.Job(
        id=_id(row["id"]),
        tenant=row["tenant"],
        project=row["project"],
        run_id=_id(row["run_id"]),
        source_id=_id(row["source_id"]),
        job_type=row["job_type"],
        key=row["key"],
        state=job_state(row["state"]),  # type: ignore[arg-type]
        reason=row["reason"],
        priority=row["priority"],
        idempotency_key=row["idempotency_key"] or "",
        correlation_id=row["correlation_id"],
        payload=_struct(redact_value(row["payload"])),
        payload_digest=row["payload_digest"],
        depends_on=[str(p) for p in parents],
        retry_policy=common_pb2.RetryPolicy(
            max_attempts=row["max_attempts"],
            initial_backoff=_dur(row["initial_backoff_s"]),
            max_backoff=_dur(row["max_backoff_s"]),
            backoff_multiplier=row["backoff_multiplier"],
        ),
        attempt=row["attempt"],
        not_before=_ts(row["not_before"]),
        replay_of=_id(row["replay_of"]),
        trace_parent=row["trace_parent"],
        trace_state=row["trace_state"],
        created_at=_ts(row["created_at"]),
        updated_at=_ts(row["updated_at"]),
        started_at=_ts(row["started_at"]),
        finished_at=_ts(row["finished_at"]),
        labels=redact_value(row["labels"]),
        result_digest=row["result_digest"] or "",
    )
    if row["lease_id"] is not None:
        msg.lease.CopyFrom(
            resources_pb2.JobLease(
                lease_id=_id(row["lease_id"]),
                worker_id=row["worker_id"] or "",
                lease_expires_at=_ts(row["lease_expires_at"]),
                leased_at=_ts(row["leased_at"]),
                last_heartbeat_at=_ts(row["last_heartbeat_at"]),
            )
        )
    if row["event_window_start"] is not None:
        msg.event_time_window.CopyFrom(
            common_pb2.TimeWindow(
                start=_ts(row["event_window_start"]), end=_ts(row["event_window_end"])
            )
        )
    if row["last_error_class"]:
        msg.last_error.CopyFrom(
            common_pb2.JobError(
                error_class=error_class(row["last_error_class"]),  # type: ignore[arg-type]
                message=row["last_error_message"] or "",
                retryable=bool(row["last_error_retryable"]),
                code=row["last_error_class"],
            )
        )
    if row["progress_percent"] is not None:
        msg.progress.CopyFrom(
            common_pb2.Progress(
                percent=row["progress_percent"], message=row["progress_message"] or ""
            )
        )
    if row["result"] is not None:
        msg.result.CopyFrom(_struct(row["result"]))
    return msg


def edge(row: Row, run_id: uuid.UUID, tenant: str) -> resources_pb2.DagEdge:
    return resources_pb2.DagEdge(
        run_id=str(run_id),
        parent_job_id=str(row["parent_job_id"]),
        child_job_id=str(row["child_job_id"]),
        tenant=tenant,
    )


def event(row: Row) -> events_pb2.Event:
    msg = events_pb2.Event(
        seq=row["seq"],
        event_id=str(row["event_id"]),
        schema_version=SCHEMA_VERSION,
        type=row["type"],
        occurred_at=_ts(row["occurred_at"]),
        idempotency_key=row["idempotency_key"],
        correlation_id=row["correlation_id"],
        tenant=row["tenant"],
        project=row["project"],
        actor=common_pb2.Actor(subject=row["actor_subject"], scopes=row["actor_scopes"]),
        run_id=_id(row["run_id"]),
        source_id=_id(row["source_id"]),
        data=_struct(row["data"]),
    )
    if row["job_id"] is not None:
        msg.job.CopyFrom(
            events_pb2.JobSummary(
                id=str(row["job_id"]),
                type=row["job_type"] or "",
                run_id=_id(row["run_id"]),
                attempt=row["attempt"] or 0,
                lease_id=_id(row["lease_id"]),
                state=job_state(row["to_state"]),  # type: ignore[arg-type]
                previous_state=job_state(row["from_state"]),  # type: ignore[arg-type]
                reason=row["reason"] or "",
                payload_digest=(row["data"] or {}).get("payload_digest", ""),
            )
        )
    return msg
