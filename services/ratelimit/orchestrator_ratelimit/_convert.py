"""Store / ledger rows → protobuf messages of the rate-limit contract."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2

from orchestrator_core.blackouts import Weekly
from orchestrator_grpckit import enum_number
from orchestrator_pg import Row
from orchestrator_redis import BucketKey, BucketState
from stella.orchestrator.v1 import common_pb2, ratelimit_pb2, resources_pb2

CIRCUIT_STATE = common_pb2.CircuitState.DESCRIPTOR
_ORIGIN = resources_pb2.ThrottleOrigin.DESCRIPTOR


def circuit_state(name: str) -> int:
    """The CircuitState of a bucket's circuit label (UNSPECIFIED for an unknown one)."""
    try:
        return enum_number(CIRCUIT_STATE, name)
    except KeyError:
        return common_pb2.CIRCUIT_STATE_UNSPECIFIED


def ts(value: datetime | float | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value.astimezone(UTC))
    return out


def dur(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(timedelta(seconds=max(seconds, 0.0)))
    return out


def key(value: BucketKey) -> ratelimit_pb2.BucketKey:
    return ratelimit_pb2.BucketKey(tenant=value.tenant, host=value.host)


def bucket(state: BucketState) -> ratelimit_pb2.Bucket:
    override_until = getattr(state, "override_until", None)
    return ratelimit_pb2.Bucket(
        key=key(state.key),
        capacity=math.floor(state.capacity),
        refill_per_second=state.refill_per_s,
        effective_refill_per_second=state.effective_refill_per_s,
        tokens=state.tokens,
        paused_until=ts(state.paused_until),
        reason=state.reason,
        circuit_state=circuit_state(state.circuit),  # type: ignore[arg-type]
        updated_at=ts(state.updated_at),
        override_until=ts(override_until),
    )


def circuit(state: BucketState) -> ratelimit_pb2.Circuit:
    """The circuit breaker view of a bucket (the store keeps no per-window counts here)."""
    return ratelimit_pb2.Circuit(
        key=key(state.key),
        state=circuit_state(state.circuit),  # type: ignore[arg-type]
        failure_count=int(getattr(state, "failures", 0) or 0),
        request_count=int(getattr(state, "requests", 0) or 0),
        opened_at=ts(getattr(state, "circuit_opened_at", None)),
        half_open_at=ts(getattr(state, "circuit_until", None)),
        updated_at=ts(state.updated_at),
    )


def throttle(row: Row) -> resources_pb2.Throttle:
    return resources_pb2.Throttle(
        id=str(row["id"]),
        tenant=row["tenant"],
        source_id=str(row["source_id"]) if row["source_id"] else "",
        host=row["host"],
        refill_per_second=row["refill_per_second"],
        capacity=int(row["capacity"]),
        effective_refill_per_second=row["effective_refill_per_second"],
        paused_until=ts(row["paused_until"]),
        reason=row["reason"],
        ticket=row["ticket"],
        origin=enum_number(_ORIGIN, row["origin"]),
        created_by=row["created_by"],
        created_at=ts(row["created_at"]),
        expires_at=ts(row["expires_at"]),
    )


def blackout(row: Row) -> ratelimit_pb2.Blackout:
    out = ratelimit_pb2.Blackout(
        id=str(row["id"]),
        tenant=row["tenant"],
        source_id=str(row["source_id"]) if row["source_id"] else "",
        start=ts(row["start_at"]),
        end=ts(row["end_at"]),
        reason=row["reason"],
        ticket=row["ticket"],
        created_by=row["created_by"],
        created_at=ts(row["created_at"]),
    )
    weekly = Weekly.from_json(row["recurrence"])
    if weekly is not None:
        out.recurrence.weekly.CopyFrom(
            ratelimit_pb2.WeeklyRecurrence(
                days=[ratelimit_pb2.Weekday.ValueType(d) for d in sorted(weekly.days)],
                start_minute_utc=weekly.start_minute_utc,
                duration=dur(weekly.duration_s),
            )
        )
    return out
