"""Folding transition events into job state (the replay model), and JobRecord."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator_core import (
    IllegalTransition,
    InvalidArgument,
    JobModel,
    JobRecord,
    JobState,
    Reason,
    TransitionEvent,
    apply,
    fold,
)

S = JobState
R = Reason
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def ev(
    previous: JobState | None,
    to: JobState,
    reason: Reason,
    attempt: int = 0,
    *,
    minute: int = 0,
    lease_id: str | None = None,
    job_id: str = "j1",
    max_attempts: int | None = None,
) -> TransitionEvent:
    return TransitionEvent.for_transition(
        previous,
        to,
        reason,
        attempt=attempt,
        occurred_at=T0 + timedelta(minutes=minute),
        lease_id=lease_id,
        job_id=job_id,
        max_attempts=max_attempts,
    )


HAPPY = [
    ev(None, S.PENDING, R.WAITING_ON_PARENTS, max_attempts=2),
    ev(S.PENDING, S.READY, R.DEPENDENCIES_MET, minute=1),
    ev(S.READY, S.LEASED, R.LEASED, 1, minute=2, lease_id="l1"),
    ev(S.LEASED, S.READY, R.LEASE_EXPIRED, 1, minute=3, lease_id="l1"),
    ev(S.READY, S.LEASED, R.LEASED, 2, minute=4, lease_id="l2"),
    ev(S.LEASED, S.DEAD, R.ATTEMPTS_EXHAUSTED, 2, minute=5, lease_id="l2"),
    ev(S.DEAD, S.READY, R.OPERATOR_RETRY, 0, minute=6),
    ev(S.READY, S.LEASED, R.LEASED, 1, minute=7, lease_id="l3"),
    ev(S.LEASED, S.SUCCEEDED, R.COMPLETED, 1, minute=8, lease_id="l3"),
]


def test_event_types_are_derived_from_the_transition() -> None:
    assert [e.type for e in HAPPY] == [
        "job.created",
        "job.ready",
        "job.leased",
        "job.retrying",
        "job.leased",
        "job.dead",
        "job.retried",
        "job.leased",
        "job.succeeded",
    ]


def test_fold_rebuilds_the_job() -> None:
    job = fold(HAPPY)
    assert job == JobModel(
        job_id="j1",
        state=S.SUCCEEDED,
        reason=R.COMPLETED,
        attempt=1,
        max_attempts=2,
        lease_id=None,
        created_at=T0,
        updated_at=T0 + timedelta(minutes=8),
        finished_at=T0 + timedelta(minutes=8),
        version=9,
    )
    assert fold([]) is None


def test_intermediate_states_track_lease_and_finish_time() -> None:
    leased = fold(HAPPY[:3])
    assert leased is not None
    assert (leased.state, leased.lease_id, leased.attempt) == (S.LEASED, "l1", 1)
    dead = fold(HAPPY[:6])
    assert dead is not None
    assert (dead.state, dead.lease_id) == (S.DEAD, None)
    assert dead.finished_at == T0 + timedelta(minutes=5)
    retried = apply(dead, HAPPY[6])
    assert (retried.finished_at, retried.attempt) == (None, 0)
    assert dead.state is S.DEAD  # apply never mutates its input


def test_apply_rejects_illegal_transition() -> None:
    done = fold(HAPPY)
    bad = dataclasses.replace(HAPPY[6], type="job.retrying", reason=R.RETRY_BACKOFF)
    with pytest.raises(IllegalTransition, match="job j1 cannot go from succeeded to ready"):
        apply(done, bad)
    with pytest.raises(IllegalTransition):
        apply(None, dataclasses.replace(HAPPY[2], type="job.created"))


def _invalid_field(model: JobModel | None, event: TransitionEvent) -> str:
    with pytest.raises(InvalidArgument) as info:
        apply(model, event)
    return info.value.violations[0].field


def test_apply_rejects_inconsistent_events() -> None:
    pending = fold(HAPPY[:1])
    ready = fold(HAPPY[:2])
    leased = fold(HAPPY[:3])
    assert _invalid_field(pending, dataclasses.replace(HAPPY[1], type="job.retried")) == "type"
    assert _invalid_field(pending, dataclasses.replace(HAPPY[1], reason=R.LEASED)) == "reason"
    assert _invalid_field(pending, dataclasses.replace(HAPPY[1], job_id="j2")) == "job_id"
    assert _invalid_field(ready, dataclasses.replace(HAPPY[2], lease_id=None)) == "lease_id"
    assert _invalid_field(ready, dataclasses.replace(HAPPY[2], attempt=3)) == "attempt"
    assert _invalid_field(leased, dataclasses.replace(HAPPY[3], attempt=0)) == "attempt"
    assert _invalid_field(None, dataclasses.replace(HAPPY[0], attempt=-1)) == "attempt"
    naive = dataclasses.replace(HAPPY[1], occurred_at=datetime(2025, 1, 1))
    assert _invalid_field(pending, naive) == "occurred_at"


def test_operator_retry_is_the_only_way_to_lower_the_attempt() -> None:
    dead = fold(HAPPY[:6])
    assert dead is not None
    assert apply(dead, HAPPY[6]).attempt == 0


def test_job_record_coerces_text_from_database_rows() -> None:
    row = {
        "id": "0190",
        "tenant": "acme",
        "job_type": "fetch",
        "state": "leased",
        "reason": "leased",
        "attempt": 1,
        "payload": {"url": "https://example.org"},
    }
    record = JobRecord(**row)  # type: ignore[arg-type]
    assert record.state is S.LEASED
    assert record.reason is R.LEASED
    assert record.run_id is None
    assert record.lease_expires_at is None
    assert not record.is_terminal
    assert dataclasses.replace(record, state=S.DEAD).is_terminal
    with pytest.raises(ValueError, match="'bogus' is not a valid JobState"):
        JobRecord(id="x", tenant="t", job_type="f", state="bogus")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.state = S.READY  # type: ignore[misc]
