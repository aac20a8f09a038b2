"""A pure, in-memory job state machine folded from transition events.

Used by unit tests and by offline audit replay (``history.jsonl`` → job states): folding a
job's events with :func:`apply` must rebuild the job exactly, and any event the state
machine would not have allowed is reported instead of silently applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from orchestrator_core.clock import ensure_utc
from orchestrator_core.errors import FieldViolation, InvalidArgument
from orchestrator_core.states import (
    TERMINAL_JOB_STATES,
    JobState,
    Reason,
    check_transition,
    event_type_for,
    is_expected_reason,
)

__all__ = ["JobModel", "TransitionEvent", "apply", "fold"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionEvent:
    """One job state change as written to ``orchestrator.events``.

    Attributes:
        type: Event type, must equal ``event_type_for(previous state, to_state)``.
        to_state: State the job entered.
        reason: Why.
        attempt: The job's attempt counter after the change.
        occurred_at: When (timezone-aware).
        lease_id: Lease granted (``job.leased``) or ended by this change.
        job_id: Job the event belongs to (checked when both sides know it).
        max_attempts: Attempt budget; carried by ``job.created``.
    """

    type: str
    to_state: JobState
    reason: Reason
    attempt: int
    occurred_at: datetime
    lease_id: str | None = None
    job_id: str = ""
    max_attempts: int | None = None

    @classmethod
    def for_transition(
        cls,
        previous: JobState | None,
        to_state: JobState,
        reason: Reason,
        *,
        attempt: int,
        occurred_at: datetime,
        lease_id: str | None = None,
        job_id: str = "",
        max_attempts: int | None = None,
    ) -> TransitionEvent:
        """Build the event for a transition, naming it with :func:`event_type_for`.

        Raises:
            IllegalTransition: The transition is not legal.
        """
        return cls(
            type=event_type_for(previous, to_state),
            to_state=to_state,
            reason=reason,
            attempt=attempt,
            occurred_at=occurred_at,
            lease_id=lease_id,
            job_id=job_id,
            max_attempts=max_attempts,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobModel:
    """A job's state as rebuilt from its events.

    Attributes:
        job_id: Id of the job ("" when events do not carry it).
        state: Current state.
        reason: Reason of the last transition.
        attempt: Attempt counter.
        max_attempts: Attempt budget, when the creation event carried it.
        lease_id: Current lease; set exactly while ``state`` is ``leased``.
        throttled: Attempts that ended ``throttled`` (an upstream 429): they spend none
            of ``max_attempts``.
        created_at: Time of the creation event.
        updated_at: Time of the last event.
        finished_at: When the job last became terminal (cleared by an operator retry).
        version: Number of events folded in.
    """

    job_id: str
    state: JobState
    reason: Reason
    attempt: int
    max_attempts: int | None
    lease_id: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    version: int
    throttled: int = 0


def _invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"event {field} {description}", [FieldViolation(field, description)])


def apply(model: JobModel | None, event: TransitionEvent) -> JobModel:
    """Fold one event into a job.

    Args:
        model: The job so far, ``None`` before its creation event.
        event: The next event of this job.

    Returns:
        The job after the event (``model`` itself is never changed).

    Raises:
        IllegalTransition: The state machine does not allow ``event.to_state`` now.
        InvalidArgument: The event is inconsistent: wrong type for the transition, a reason
            that does not fit it, another job's id, a negative or decreasing attempt (only an
            operator retry may reset it), an attempt above ``max_attempts``, a lease event
            without ``lease_id``, or a naive ``occurred_at``.
    """
    previous = model.state if model is not None else None
    job_id = event.job_id or (model.job_id if model is not None else "")
    check_transition(previous, event.to_state, job_id=job_id)
    expected_type = event_type_for(previous, event.to_state)
    if event.type != expected_type:
        raise _invalid(
            "type",
            f"must be '{expected_type}' for {previous} -> {event.to_state}, got '{event.type}'",
        )
    if not is_expected_reason(previous, event.to_state, event.reason):
        raise _invalid("reason", f"'{event.reason}' does not fit {previous} -> {event.to_state}")
    if model is not None and event.job_id and model.job_id and event.job_id != model.job_id:
        raise _invalid("job_id", f"belongs to job {event.job_id}, not {model.job_id}")
    try:
        occurred_at = ensure_utc(event.occurred_at, "occurred_at")
    except ValueError as exc:
        raise _invalid("occurred_at", "must be timezone-aware") from exc
    if event.attempt < 0:
        raise _invalid("attempt", f"must be >= 0, got {event.attempt}")
    if (
        model is not None
        and event.attempt < model.attempt
        and event.reason != Reason.OPERATOR_RETRY
    ):
        raise _invalid("attempt", f"went back from {model.attempt} to {event.attempt}")
    max_attempts = (
        event.max_attempts
        if event.max_attempts is not None
        else (model.max_attempts if model is not None else None)
    )
    throttled = (model.throttled if model is not None else 0) + (
        1 if event.reason == Reason.THROTTLED else 0
    )
    if max_attempts is not None and event.attempt > max_attempts + throttled:
        raise _invalid("attempt", f"{event.attempt} exceeds max_attempts {max_attempts}")
    if event.to_state is JobState.LEASED and not event.lease_id:
        raise _invalid("lease_id", "is required when a job is leased")

    terminal = event.to_state in TERMINAL_JOB_STATES
    if model is None:
        return JobModel(
            job_id=job_id,
            state=event.to_state,
            reason=event.reason,
            attempt=event.attempt,
            max_attempts=max_attempts,
            lease_id=None,
            created_at=occurred_at,
            updated_at=occurred_at,
            finished_at=None,
            version=1,
        )
    return replace(
        model,
        job_id=job_id,
        state=event.to_state,
        reason=event.reason,
        attempt=event.attempt,
        max_attempts=max_attempts,
        lease_id=event.lease_id if event.to_state is JobState.LEASED else None,
        updated_at=occurred_at,
        finished_at=occurred_at if terminal else None,
        version=model.version + 1,
        throttled=throttled,
    )


def fold(events: Iterable[TransitionEvent], model: JobModel | None = None) -> JobModel | None:
    """Apply ``events`` in order, starting from ``model``.

    Returns:
        The resulting job, or ``None`` when there were no events and no starting model.

    Raises:
        IllegalTransition, InvalidArgument: As :func:`apply`, for the first bad event.
    """
    for event in events:
        model = apply(model, event)
    return model
