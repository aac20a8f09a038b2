"""Typed records: immutable snapshots of ledger rows, as they cross from the stores into
the services where fields are read (and as unit tests build them, without a database)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator_core.states import TERMINAL_JOB_STATES, JobState, Reason

__all__ = ["JobRecord", "ScheduleRecord"]


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


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleRecord:
    """One cron schedule as the firing pass reads it (``orchestrator.schedules``).

    Attributes:
        id: UUIDv7 of the schedule.
        tenant: Owning tenant.
        name: Unique within the tenant; the default name of the runs it fires.
        cron: Five-field cron expression or alias, in UTC.
        source_id: The source its runs ingest from, if any.
        run_template: The ``RunTemplate`` (JSON form) each firing instantiates.
        catch_up: ``skip``, ``one`` or ``all``: what to do with fire times missed.
        catch_up_window: How far back missed fire times still count.
        overlap: ``skip``, ``buffer_one`` or ``allow``: a firing while a run is open.
        enabled: Whether it fires at all.
        next_fire_at: When it fires next (None: never).
        last_fire_at: When it fired last.
        buffered_fire_at: A fire time held back by ``buffer_one`` until the open run ends.
    """

    id: uuid.UUID
    tenant: str
    name: str
    cron: str
    source_id: uuid.UUID | None = None
    run_template: dict[str, Any] = field(default_factory=dict)
    catch_up: str = "one"
    catch_up_window: timedelta | None = None
    overlap: str = "skip"
    enabled: bool = True
    next_fire_at: datetime | None = None
    last_fire_at: datetime | None = None
    buffered_fire_at: datetime | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> ScheduleRecord:
        """The record of a database row (columns it does not name are ignored)."""
        return cls(**{name: row[name] for name in _SCHEDULE_FIELDS if name in row})


_SCHEDULE_FIELDS = tuple(ScheduleRecord.__dataclass_fields__)
