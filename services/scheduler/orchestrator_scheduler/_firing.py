"""Schedule firing: cron arithmetic, catch-up and overlap policies, and the leader's pass.

Cron expressions are standard 5-field UTC crons or ``@hourly``-style aliases, evaluated by
``croniter`` (a well-kept library; we do not parse cron by hand).

A pass (:meth:`ScheduleFirer.run_once`, leader only: the replica that leads
:attr:`LeaderLoop.SCHEDULE_FIRING` fires, the others stand by; leadership is held between
passes and re-checked before each)
locks the due schedules (``FOR UPDATE SKIP LOCKED``), decides their fire times with
:func:`plan`, creates one run per fire time and advances the schedule. A fire time always
gives the same run: id ``uuid5(schedule id, fire time)`` and idempotency key
``schedule:<id>:<fire time>``, so a pass repeated after a crash or a failover between
creating the run and advancing the schedule returns the run that exists: exactly one run per
fire time.

Policies (given fire times ``f1 < ... < fk <= now`` that are due):

* catch-up ``skip``: only ``fk``, and only when it is at most :data:`LATE_GRACE_S` late;
  ``one``: only ``fk`` (one run for everything missed), within ``catch_up_window``;
  ``all``: every ``fi`` within ``catch_up_window``, oldest first.
* overlap (a run of the schedule is unfinished): ``skip`` drops the fire time;
  ``buffer_one`` keeps the latest one and fires it once the run finishes; ``allow`` fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter
from google.protobuf import json_format

from orchestrator_core import Clock, FieldViolation, InvalidArgument, ScheduleRecord, SystemClock
from orchestrator_pg import LeaderLoop, LeaderOnlyLoop, NewRun, Stores, TxContext
from orchestrator_scheduler import _validate as validate
from stella.orchestrator.v1 import resources_pb2

LATE_GRACE_S = 60.0
MAX_FIRES_PER_PASS = 1000  # fire times looked at per schedule per pass
DUE_BATCH = 100
MAX_SLEEP_S = 1.0
RUN_NAMESPACE = uuid.UUID("6f0d1c2e-5b7a-4e51-9a43-2f7c0e1d9b11")

_log = logging.getLogger("orchestrator_scheduler.firing")


def check_cron(cron: str, field: str = "cron") -> str:
    """A valid cron expression (5 fields or an ``@alias``), stripped.

    Raises:
        InvalidArgument: croniter cannot read it, or it has seconds/years fields.
    """
    text = cron.strip()
    fields = text.split()
    problem = ""
    if not text:
        problem = "is required, e.g. '0 */6 * * *' or '@hourly' (UTC)"
    elif not text.startswith("@") and len(fields) != 5:
        problem = f"must have 5 fields (minute hour day month weekday), got {len(fields)}"
    elif not croniter.is_valid(text):
        problem = f"'{text}' is not a valid cron expression"
    if problem:
        raise InvalidArgument(f"invalid {field}", [FieldViolation(field, problem)])
    return text


def next_after(cron: str, after: datetime) -> datetime:
    """The first fire time strictly after ``after`` (UTC)."""
    return croniter(cron, after.astimezone(UTC)).get_next(datetime).astimezone(UTC)


def fire_time_text(fire_at: datetime) -> str:
    return fire_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_identity(schedule_id: uuid.UUID, fire_at: datetime) -> tuple[uuid.UUID, str]:
    """The run id and idempotency key of a fire time: the same for every firer."""
    text = fire_time_text(fire_at)
    return uuid.uuid5(RUN_NAMESPACE, f"{schedule_id}/{text}"), f"schedule:{schedule_id}:{text}"


@dataclass(frozen=True)
class Plan:
    """What a pass does with one schedule."""

    fires: list[datetime]
    next_fire_at: datetime
    buffered_fire_at: datetime | None


def plan(schedule: ScheduleRecord, now: datetime, *, open_run: bool) -> Plan:
    """The fire times to run now, the next fire time and the buffered one (pure)."""
    cron = schedule.cron
    due: list[datetime] = []
    at = schedule.next_fire_at
    while at is not None and at <= now and len(due) < MAX_FIRES_PER_PASS:
        due.append(at)
        at = next_after(cron, at)
    if at is None or at <= now:
        at = next_after(cron, now)
    window: timedelta | None = schedule.catch_up_window
    in_window = [f for f in due if window is None or now - f <= window]
    policy = schedule.catch_up
    if policy == "all":
        chosen = in_window
    elif policy == "one":
        chosen = in_window[-1:]
    else:  # skip
        chosen = [f for f in due[-1:] if (now - f).total_seconds() <= LATE_GRACE_S]
    buffered: datetime | None = schedule.buffered_fire_at
    if buffered is not None and not open_run:
        chosen = [buffered, *(f for f in chosen if f != buffered)]
        buffered = None
    if open_run and chosen:
        overlap = schedule.overlap
        if overlap == "skip":
            chosen = []
        elif overlap == "buffer_one":
            buffered, chosen = chosen[-1], []
    return Plan(chosen, at, buffered)


class ScheduleFirer(LeaderOnlyLoop):
    """Fires due schedules (leader only) until cancelled.

    Args:
        stores: the stores (schedules are read and advanced, runs created through them).
        conninfo: database URL (the leader lock's dedicated connection).
        clock: the injected clock.
        max_payload_bytes: payload limit applied to templates, as for CreateRun.
        lock_key: another advisory lock key (tests that must not contend with a stack).
    """

    def __init__(
        self,
        stores: Stores,
        conninfo: str,
        *,
        clock: Clock | None = None,
        max_payload_bytes: int = validate.MAX_PAYLOAD_BYTES,
        lock_key: int | None = None,
    ) -> None:
        super().__init__(conninfo, LeaderLoop.SCHEDULE_FIRING, lock_key=lock_key)
        self.stores = stores
        self.clock = clock or SystemClock()
        self.max_payload_bytes = max_payload_bytes
        self.wake = asyncio.Event()

    async def run_forever(self) -> None:
        async with self.leadership:
            await self._fire_forever()

    async def _fire_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                _log.exception("schedule firing pass failed")
            delay = MAX_SLEEP_S
            with contextlib.suppress(Exception):
                upcoming = await self.stores.schedules.schedule_next_due()
                if upcoming is not None:
                    wait = (upcoming - self.clock.now()).total_seconds()
                    delay = min(MAX_SLEEP_S, max(0.01, wait))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.wake.wait()
            self.wake.clear()

    async def run_once(self) -> int | None:
        """One pass. Returns the runs created, or None when another replica leads."""
        if not await self.leadership.ensure():
            return None
        created = 0
        now = self.clock.now()
        async with self.stores.schedules.schedule_due(now, DUE_BATCH) as (conn, schedules):
            for schedule in schedules:
                created += await self._fire(conn, schedule, now)
        self.passes += 1
        return created

    async def _fire(self, conn: Any, schedule: ScheduleRecord, now: datetime) -> int:
        open_run = await self.stores.schedules.schedule_has_open_run(conn, schedule.id)
        decided = plan(schedule, now, open_run=open_run)
        created = 0
        for fire_at in decided.fires:
            try:
                await self._create_run(schedule, fire_at)
                created += 1
            except Exception:
                # A broken template (or a deleted source) must not stop other schedules;
                # the fire time is logged and skipped.
                _log.exception(
                    "schedule %s could not fire at %s", schedule.id, fire_time_text(fire_at)
                )
        await self.stores.schedules.schedule_advance(
            conn,
            schedule.id,
            next_fire_at=decided.next_fire_at,
            last_fire_at=decided.fires[-1] if decided.fires else None,
            buffered_fire_at=decided.buffered_fire_at,
        )
        return created

    async def _create_run(self, schedule: ScheduleRecord, fire_at: datetime) -> None:
        template = resources_pb2.RunTemplate()
        json_format.ParseDict(schedule.run_template, template)
        run_id, key = run_identity(schedule.id, fire_at)
        jobs = validate.job_batch(
            template.jobs,
            "run_template.jobs",
            max_payload_bytes=self.max_payload_bytes,
        )
        source_id = schedule.source_id
        jobs = [
            j if j.source_id or source_id is None else replace(j, source_id=source_id) for j in jobs
        ]
        run = NewRun(
            id=run_id,
            project=template.project,
            name=(template.name or schedule.name).replace("{fire_time}", fire_time_text(fire_at)),
            source_id=source_id,
            correlation_id=key,
            idempotency_key=key,
            labels={**dict(template.labels), "schedule": str(schedule.id)},
            schedule_id=schedule.id,
        )
        ctx = TxContext(tenant=schedule.tenant, actor_subject="scheduler", now=self.clock.now())
        await self.stores.runs.run_create(ctx, run, jobs)
