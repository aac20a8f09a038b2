"""Plain records the ports exchange: immutable snapshots of ledger rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator_core.states import TERMINAL_JOB_STATES, JobState, Reason

__all__ = ["JobRecord"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRecord:
    """One job as the ledger holds it (construct by keyword; ``JobRecord(**row)`` works).

    ``state`` and ``reason`` accept their text values and are converted to the enums, so a
    database row can be passed as is.

    Attributes:
        id: UUIDv7 of the job.
        tenant: Owning tenant.
        job_type: What kind of work it is; workers subscribe by job type.
        state: Current lifecycle state.
        reason: Why it entered ``state``.
        run_id: The run it belongs to, if any.
        source_id: The source it ingests from, if any.
        key: Name of the job inside its run's DAG.
        priority: Higher is claimed first within a tenant.
        attempt: Number of attempts started so far.
        max_attempts: Attempts allowed in total.
        payload: Input handed to the worker (JSON object).
        payload_digest: ``sha256:`` digest of the canonical JSON payload.
        idempotency_key: Submission key that makes resubmission return this job.
        correlation_id: Caller-supplied id propagated to logs and events.
        project: Free grouping label.
        not_before: Not claimable before this time (backoff, rate limits).
        lease_id: Current lease (only while ``leased``).
        worker_id: Worker holding the lease.
        lease_expires_at: When the current lease lapses unless extended.
        created_at: Creation time.
        updated_at: Time of the last change.
        finished_at: When it reached a terminal state.
        last_error_class: Failure class of the last failed attempt (e.g. ``http_429``).
        last_error_message: Message of the last failed attempt.
    """

    id: str
    tenant: str
    job_type: str
    state: JobState
    reason: Reason | None = None
    run_id: str | None = None
    source_id: str | None = None
    key: str | None = None
    priority: int = 0
    attempt: int = 0
    max_attempts: int | None = None
    payload: dict[str, Any] | None = None
    payload_digest: str | None = None
    idempotency_key: str | None = None
    correlation_id: str | None = None
    project: str | None = None
    not_before: datetime | None = None
    lease_id: str | None = None
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    last_error_class: str | None = None
    last_error_message: str | None = None

    def __post_init__(self) -> None:
        # Rows come back from the database as text; normalise to the enums once, here.
        if not isinstance(self.state, JobState):
            object.__setattr__(self, "state", JobState(self.state))
        if self.reason is not None and not isinstance(self.reason, Reason):
            object.__setattr__(self, "reason", Reason(self.reason))

    @property
    def is_terminal(self) -> bool:
        """Whether the job is succeeded, dead or canceled."""
        return self.state in TERMINAL_JOB_STATES
