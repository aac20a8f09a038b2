"""Job and run states, the legal transitions between them, and their event types.

Transitions (``None`` is "the job does not exist yet")::

    None     -> pending   (submitted with unfinished parents)
    None     -> ready     (submitted without parents)
    pending  -> ready     (every parent succeeded)
    ready    -> leased    (claimed by a worker)
    leased   -> succeeded (completed)
    leased   -> ready     (retryable failure, expired lease, worker gone: back off, try again)
    leased   -> dead      (attempts exhausted or non-retryable failure)
    ready    -> dead      (dead-lettered before a worker got it)
    dead     -> ready     (operator retry, or a resume of its failed run)
    pending | ready | leased -> canceled  (user cancel, or a parent died / was canceled)
    canceled -> pending | ready  (a resume of its failed run revives a job canceled as
                                  upstream_failed: pending while a parent has not succeeded)

``succeeded`` is final; ``dead`` leaves only by an operator retry or a run resume;
``canceled`` only by a run resume, and only when it was canceled as ``upstream_failed``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from orchestrator_core.errors import IllegalTransition

__all__ = [
    "EXPECTED_REASONS",
    "LEGAL_TRANSITIONS",
    "TERMINAL_JOB_STATES",
    "JobState",
    "Reason",
    "RunState",
    "check_transition",
    "derive_run_state",
    "event_type_for",
    "is_expected_reason",
]


class JobState(enum.StrEnum):
    """Where a job is in its lifecycle (stored as the lowercase value)."""

    PENDING = "pending"
    """Waits for its DAG parents to succeed."""
    READY = "ready"
    """Claimable once ``not_before`` has passed."""
    LEASED = "leased"
    """Held by one worker until ``lease_expires_at``."""
    SUCCEEDED = "succeeded"
    """Done; final."""
    DEAD = "dead"
    """Dead-lettered (attempts exhausted or non-retryable); an operator may retry it."""
    CANCELED = "canceled"
    """Canceled by a user or because a parent failed; final, except that a resume of the
    failed run revives the jobs canceled as ``upstream_failed``."""


TERMINAL_JOB_STATES: Final[frozenset[JobState]] = frozenset(
    {JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELED}
)


class Reason(enum.StrEnum):
    """Why a job entered its current state (recorded on the job and on its event)."""

    SUBMITTED = "submitted"
    WAITING_ON_PARENTS = "waiting_on_parents"
    DEPENDENCIES_MET = "dependencies_met"
    LEASED = "leased"
    COMPLETED = "completed"
    RETRY_BACKOFF = "retry_backoff"
    LEASE_EXPIRED = "lease_expired"
    WORKER_DISCONNECTED = "worker_disconnected"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    NON_RETRYABLE = "non_retryable"
    USER_CANCELED = "user_canceled"
    UPSTREAM_FAILED = "upstream_failed"
    OPERATOR_RETRY = "operator_retry"
    RUN_RESUMED = "run_resumed"
    THROTTLED = "throttled"


_S = JobState
LEGAL_TRANSITIONS: Final[Mapping[JobState | None, frozenset[JobState]]] = MappingProxyType(
    {
        None: frozenset({_S.PENDING, _S.READY}),
        _S.PENDING: frozenset({_S.READY, _S.CANCELED}),
        _S.READY: frozenset({_S.LEASED, _S.CANCELED, _S.DEAD}),
        _S.LEASED: frozenset({_S.SUCCEEDED, _S.READY, _S.DEAD, _S.CANCELED}),
        _S.DEAD: frozenset({_S.READY}),
        _S.SUCCEEDED: frozenset(),
        _S.CANCELED: frozenset({_S.PENDING, _S.READY}),
    }
)
"""For each state (``None``: not created yet), the states it may move to."""

_R = Reason
EXPECTED_REASONS: Final[Mapping[tuple[JobState | None, JobState], frozenset[Reason]]] = (
    MappingProxyType(
        {
            (None, _S.PENDING): frozenset({_R.SUBMITTED, _R.WAITING_ON_PARENTS}),
            (None, _S.READY): frozenset({_R.SUBMITTED}),
            (_S.PENDING, _S.READY): frozenset({_R.DEPENDENCIES_MET}),
            (_S.PENDING, _S.CANCELED): frozenset({_R.USER_CANCELED, _R.UPSTREAM_FAILED}),
            (_S.READY, _S.LEASED): frozenset({_R.LEASED}),
            (_S.READY, _S.CANCELED): frozenset({_R.USER_CANCELED, _R.UPSTREAM_FAILED}),
            (_S.READY, _S.DEAD): frozenset({_R.NON_RETRYABLE, _R.ATTEMPTS_EXHAUSTED}),
            (_S.LEASED, _S.SUCCEEDED): frozenset({_R.COMPLETED}),
            (_S.LEASED, _S.READY): frozenset(
                {_R.RETRY_BACKOFF, _R.LEASE_EXPIRED, _R.WORKER_DISCONNECTED, _R.THROTTLED}
            ),
            (_S.LEASED, _S.DEAD): frozenset({_R.ATTEMPTS_EXHAUSTED, _R.NON_RETRYABLE}),
            (_S.LEASED, _S.CANCELED): frozenset({_R.USER_CANCELED, _R.UPSTREAM_FAILED}),
            (_S.DEAD, _S.READY): frozenset({_R.OPERATOR_RETRY, _R.RUN_RESUMED}),
            (_S.CANCELED, _S.PENDING): frozenset({_R.RUN_RESUMED}),
            (_S.CANCELED, _S.READY): frozenset({_R.RUN_RESUMED}),
        }
    )
)
"""For each legal transition, the reason codes that may accompany it."""


def check_transition(current: JobState | None, target: JobState, *, job_id: str = "") -> None:
    """Refuse a state change the state machine does not allow.

    Args:
        current: The job's state, or ``None`` when the job is being created.
        target: The state asked for.
        job_id: Named in the error message when given.

    Raises:
        IllegalTransition: ``target`` is not in ``LEGAL_TRANSITIONS[current]``.
    """
    if target not in LEGAL_TRANSITIONS[current]:
        raise IllegalTransition(current, target, job_id)


def is_expected_reason(previous: JobState | None, new: JobState, reason: Reason) -> bool:
    """Tell whether ``reason`` is a sensible reason code for the transition.

    Returns:
        ``False`` for an illegal transition or a reason that does not fit it.
    """
    return reason in EXPECTED_REASONS.get((previous, new), frozenset())


def event_type_for(previous: JobState | None, new: JobState) -> str:
    """Name the event a transition writes to ``orchestrator.events``.

    Args:
        previous: State before (``None``: creation).
        new: State after.

    Returns:
        One of ``job.created``, ``job.ready``, ``job.retried`` (operator retry of a dead job),
        ``job.retrying`` (back to ready after a failure or lost lease), ``job.leased``,
        ``job.succeeded``, ``job.dead``, ``job.canceled``, ``job.revived`` (a canceled job
        back to pending or ready when its failed run is resumed).

    Raises:
        IllegalTransition: The transition is not legal.
    """
    check_transition(previous, new)
    if previous is None:
        return "job.created"
    if previous is JobState.CANCELED:
        return "job.revived"
    if new is JobState.READY:
        if previous is JobState.PENDING:
            return "job.ready"
        if previous is JobState.DEAD:
            return "job.retried"
        return "job.retrying"  # previous is LEASED: the only other way into READY
    # Every other target is entered from states that share one event name.
    return f"job.{new.value}"


class RunState(enum.StrEnum):
    """Status of a run, derived from the states of its jobs (never stored on its own)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


def derive_run_state(counts: Mapping[JobState, int]) -> RunState:
    """Derive a run's status from how many of its jobs are in each state.

    Args:
        counts: Jobs per state; missing states and zero counts mean none.

    Returns:
        ``PENDING`` for a run without jobs or whose jobs have not started;
        when every job is terminal: ``SUCCEEDED`` if all succeeded, ``FAILED`` if any is dead,
        else ``CANCELED``; otherwise ``RUNNING`` when a job is leased or has finished.

    Raises:
        ValueError: A count is negative.
    """
    present: dict[JobState, int] = {}
    for state, count in counts.items():
        if count < 0:
            raise ValueError(f"job count for state {state} must be >= 0, got {count}")
        if count:
            present[JobState(state)] = count
    if not present:
        return RunState.PENDING
    if all(state in TERMINAL_JOB_STATES for state in present):
        if set(present) == {JobState.SUCCEEDED}:
            return RunState.SUCCEEDED
        if JobState.DEAD in present:
            return RunState.FAILED
        return RunState.CANCELED
    if JobState.LEASED in present or any(state in TERMINAL_JOB_STATES for state in present):
        return RunState.RUNNING
    return RunState.PENDING
