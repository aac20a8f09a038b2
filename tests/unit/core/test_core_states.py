"""Job state machine, event types and run status derivation."""

from __future__ import annotations

import itertools

import pytest

from orchestrator_core import (
    EXPECTED_REASONS,
    LEGAL_TRANSITIONS,
    TERMINAL_JOB_STATES,
    FailedPrecondition,
    IllegalTransition,
    JobState,
    Reason,
    RunState,
    check_transition,
    derive_run_state,
    event_type_for,
    is_expected_reason,
)

S = JobState

LEGAL = [
    (None, S.PENDING),
    (None, S.READY),
    (S.PENDING, S.READY),
    (S.PENDING, S.CANCELED),
    (S.READY, S.LEASED),
    (S.READY, S.CANCELED),
    (S.READY, S.DEAD),
    (S.LEASED, S.SUCCEEDED),
    (S.LEASED, S.READY),
    (S.LEASED, S.DEAD),
    (S.LEASED, S.CANCELED),
    (S.DEAD, S.READY),
    (S.CANCELED, S.PENDING),
    (S.CANCELED, S.READY),
]
ALL_SOURCES: list[JobState | None] = [None, *JobState]
ILLEGAL = [
    (current, target)
    for current, target in itertools.product(ALL_SOURCES, JobState)
    if (current, target) not in LEGAL
]


def test_state_values_are_the_stored_lowercase_names() -> None:
    assert [s.value for s in JobState] == [
        "pending",
        "ready",
        "leased",
        "succeeded",
        "dead",
        "canceled",
    ]
    assert JobState("leased") is JobState.LEASED
    assert {S.SUCCEEDED, S.DEAD, S.CANCELED} == TERMINAL_JOB_STATES


def test_reason_codes_are_the_documented_values() -> None:
    assert {r.value for r in Reason} == {
        "submitted",
        "waiting_on_parents",
        "dependencies_met",
        "leased",
        "completed",
        "retry_backoff",
        "lease_expired",
        "worker_disconnected",
        "attempts_exhausted",
        "non_retryable",
        "user_canceled",
        "upstream_failed",
        "operator_retry",
        "run_resumed",
        "throttled",
    }


def test_transition_table_is_exactly_the_documented_one() -> None:
    table = {(c, t) for c, targets in LEGAL_TRANSITIONS.items() for t in targets}
    assert table == set(LEGAL)
    assert set(LEGAL_TRANSITIONS) == set(ALL_SOURCES)
    with pytest.raises(TypeError):
        LEGAL_TRANSITIONS[S.SUCCEEDED] = frozenset({S.READY})  # type: ignore[index]


@pytest.mark.parametrize(("current", "target"), LEGAL)
def test_legal_transition_is_accepted(current: JobState | None, target: JobState) -> None:
    check_transition(current, target, job_id="j1")  # must not raise


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_transition_is_rejected(current: JobState | None, target: JobState) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, target, job_id="0190aaaa")
    err = info.value
    assert isinstance(err, FailedPrecondition)
    assert (err.current, err.target, err.job_id) == (current, target, "0190aaaa")
    assert err.reason == "ILLEGAL_TRANSITION"
    assert err.grpc_status == "FAILED_PRECONDITION"


def test_illegal_transition_message_is_precise() -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(S.SUCCEEDED, S.READY, job_id="0190abcd")
    assert str(info.value) == "job 0190abcd cannot go from succeeded to ready"
    assert info.value.metadata == {
        "current": "succeeded",
        "target": "ready",
        "job_id": "0190abcd",
    }
    assert info.value.violations[0].subject == "jobs/0190abcd"
    with pytest.raises(IllegalTransition, match=r"^a job cannot be created in state leased$"):
        check_transition(None, S.LEASED)


def test_terminal_states_only_leave_by_operator_retry_or_run_resume() -> None:
    assert LEGAL_TRANSITIONS[S.SUCCEEDED] == set()
    assert LEGAL_TRANSITIONS[S.DEAD] == {S.READY}
    assert LEGAL_TRANSITIONS[S.CANCELED] == {S.PENDING, S.READY}
    assert EXPECTED_REASONS[(S.DEAD, S.READY)] == {Reason.OPERATOR_RETRY, Reason.RUN_RESUMED}
    assert EXPECTED_REASONS[(S.CANCELED, S.PENDING)] == {Reason.RUN_RESUMED}
    assert EXPECTED_REASONS[(S.CANCELED, S.READY)] == {Reason.RUN_RESUMED}


@pytest.mark.parametrize(
    ("previous", "new", "event_type"),
    [
        (None, S.PENDING, "job.created"),
        (None, S.READY, "job.created"),
        (S.PENDING, S.READY, "job.ready"),
        (S.DEAD, S.READY, "job.retried"),
        (S.LEASED, S.READY, "job.retrying"),
        (S.READY, S.LEASED, "job.leased"),
        (S.LEASED, S.SUCCEEDED, "job.succeeded"),
        (S.READY, S.DEAD, "job.dead"),
        (S.LEASED, S.DEAD, "job.dead"),
        (S.PENDING, S.CANCELED, "job.canceled"),
        (S.READY, S.CANCELED, "job.canceled"),
        (S.LEASED, S.CANCELED, "job.canceled"),
        (S.CANCELED, S.PENDING, "job.revived"),
        (S.CANCELED, S.READY, "job.revived"),
    ],
)
def test_event_type_for_each_legal_transition(
    previous: JobState | None, new: JobState, event_type: str
) -> None:
    assert event_type_for(previous, new) == event_type


def test_event_type_table_covers_every_legal_transition() -> None:
    # Every legal pair has a name from the documented set, and no name is made up.
    names = {event_type_for(c, t) for c, t in LEGAL}
    assert names == {
        "job.created",
        "job.ready",
        "job.retried",
        "job.retrying",
        "job.leased",
        "job.succeeded",
        "job.dead",
        "job.canceled",
        "job.revived",
    }


@pytest.mark.parametrize(("previous", "new"), ILLEGAL)
def test_event_type_for_illegal_transition_raises(previous: JobState | None, new: JobState) -> None:
    with pytest.raises(IllegalTransition):
        event_type_for(previous, new)


def test_every_legal_transition_has_reasons_and_every_reason_is_used() -> None:
    assert set(EXPECTED_REASONS) == set(LEGAL)
    assert all(EXPECTED_REASONS[pair] for pair in LEGAL)
    assert set().union(*EXPECTED_REASONS.values()) == set(Reason)


@pytest.mark.parametrize(
    ("previous", "new", "reason", "expected"),
    [
        (S.LEASED, S.READY, Reason.LEASE_EXPIRED, True),
        (S.LEASED, S.READY, Reason.OPERATOR_RETRY, False),
        (S.DEAD, S.READY, Reason.OPERATOR_RETRY, True),
        (S.PENDING, S.CANCELED, Reason.UPSTREAM_FAILED, True),
        (S.LEASED, S.SUCCEEDED, Reason.COMPLETED, True),
        (S.LEASED, S.SUCCEEDED, Reason.LEASED, False),
        (S.SUCCEEDED, S.READY, Reason.OPERATOR_RETRY, False),  # illegal transition
    ],
)
def test_is_expected_reason(
    previous: JobState | None, new: JobState, reason: Reason, expected: bool
) -> None:
    assert is_expected_reason(previous, new, reason) is expected


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({}, RunState.PENDING),
        ({S.PENDING: 0, S.LEASED: 0}, RunState.PENDING),
        ({S.PENDING: 2, S.READY: 1}, RunState.PENDING),
        ({S.READY: 3}, RunState.PENDING),
        ({S.READY: 3, S.LEASED: 1}, RunState.RUNNING),
        ({S.PENDING: 1, S.SUCCEEDED: 1}, RunState.RUNNING),
        ({S.READY: 1, S.DEAD: 1}, RunState.RUNNING),
        ({S.PENDING: 1, S.CANCELED: 1}, RunState.RUNNING),
        ({S.SUCCEEDED: 4}, RunState.SUCCEEDED),
        ({S.SUCCEEDED: 4, S.LEASED: 0}, RunState.SUCCEEDED),
        ({S.SUCCEEDED: 3, S.DEAD: 1}, RunState.FAILED),
        ({S.CANCELED: 2, S.DEAD: 1}, RunState.FAILED),
        ({S.SUCCEEDED: 3, S.CANCELED: 1}, RunState.CANCELED),
        ({S.CANCELED: 1}, RunState.CANCELED),
    ],
)
def test_derive_run_state(counts: dict[JobState, int], expected: RunState) -> None:
    assert derive_run_state(counts) is expected


def test_derive_run_state_accepts_text_keys_and_rejects_negative_counts() -> None:
    assert derive_run_state({"succeeded": 2}) is RunState.SUCCEEDED  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="must be >= 0"):
        derive_run_state({S.READY: -1})
