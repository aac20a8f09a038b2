"""Backfills: a past event-time range of a source re-processed in windows, one job each.

Creating one is a single transaction under a per-{tenant, source, job type} advisory lock:
an identical active backfill (same range and window size) is returned instead (the second
request is suppressed), any other active backfill whose range overlaps is refused with the
overlap named, windows already covered (a job of the key whose event window contains the
window and that succeeded or is queued or running) are suppressed, and the rest become the
jobs of one run. :meth:`BackfillStore.backfill_plan` answers the same question without
writing (the dry run), so its job count is what the real run creates at that moment.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator_core import FailedPrecondition, NotFound, PreconditionViolation, new_id
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._job_insert import NewJob
from orchestrator_pg._queries import query
from orchestrator_pg._runs import NewRun, RunStore, run_insert
from orchestrator_pg._sources import source_check_enabled_many
from orchestrator_pg._tx import Conn, audit_entry_write, fetch_all, fetch_one, fetch_page, now_of

Window = tuple[datetime, datetime]
MAX_WINDOWS = 100_000


@dataclass(frozen=True)
class BackfillRequest:
    """A validated backfill request."""

    source_id: uuid.UUID
    job_type: str
    start: datetime
    end: datetime
    window_size: timedelta
    priority: int


@dataclass(frozen=True)
class BackfillPlan:
    """The windows of a request and which of them would become jobs."""

    windows: list[Window]
    missing: list[Window]
    overlapping: list[Row]
    identical: Row | None

    @property
    def suppressed(self) -> int:
        return len(self.windows) - len(self.missing)


def split_windows(start: datetime, end: datetime, size: timedelta) -> list[Window]:
    """``[start, end)`` cut into windows of ``size`` from ``start`` (the last one shorter)."""
    windows: list[Window] = []
    at = start
    while at < end:
        windows.append((at, min(at + size, end)))
        at += size
    return windows


def _overlap_error(request: BackfillRequest, rows: Sequence[Row]) -> FailedPrecondition:
    first = rows[0]
    named = ", ".join(
        f"backfill {r['id']} [{r['range_start'].isoformat()}, {r['range_end'].isoformat()})"
        for r in rows
    )
    return FailedPrecondition(
        f"the range overlaps an active backfill of source {request.source_id} and job type "
        f"'{request.job_type}': {named}; wait for it, cancel it, or request the "
        "non-overlapping part",
        reason="BACKFILL_OVERLAP",
        violations=[
            PreconditionViolation(
                "BACKFILL_OVERLAP",
                f"backfills/{r['id']}",
                f"active over [{r['range_start'].isoformat()}, {r['range_end'].isoformat()})",
            )
            for r in rows
        ],
        metadata={"backfill_id": str(first["id"])},
    )


class BackfillStore:
    """Storage of backfills; their runs go through :class:`RunStore` (named noun-first,
    STYLE rule 4)."""

    def __init__(self, db: Database, runs: RunStore) -> None:
        # Tenant APIs: confined to their tenant by row-level security (see SourceStore).
        self.db = db.isolated()
        self.runs = runs

    async def _plan(self, conn: Conn, tenant: str, request: BackfillRequest) -> BackfillPlan:
        windows = split_windows(request.start, request.end, request.window_size)
        key = {"tenant": tenant, "source_id": request.source_id, "job_type": request.job_type}
        cur = await conn.execute(
            query("backfill_list_overlapping"), key | {"start": request.start, "end": request.end}
        )
        overlapping = await cur.fetchall()
        identical = next(
            (
                r
                for r in overlapping
                if (r["range_start"], r["range_end"], r["window_size"])
                == (request.start, request.end, request.window_size)
            ),
            None,
        )
        cur = await conn.execute(
            query("backfill_covered_windows"),
            key | {"starts": [w[0] for w in windows], "ends": [w[1] for w in windows]},
        )
        covered = {row["i"] for row in await cur.fetchall()}
        missing = [w for i, w in enumerate(windows, start=1) if i not in covered]
        return BackfillPlan(windows, missing, overlapping, identical)

    async def backfill_plan(self, tenant: str, request: BackfillRequest) -> BackfillPlan:
        """What :meth:`backfill_create` would do now (the dry run); writes nothing."""
        async with self.db.reader(tenant) as conn:
            return await self._plan(conn, tenant, request)

    async def backfill_queue_room(self, tenant: str, job_type: str) -> list[Row]:
        return await fetch_all(
            self.db, "backfill_queue_room", {"tenant": tenant, "job_type": job_type}
        )

    async def backfill_create(
        self,
        ctx: TxContext,
        request: BackfillRequest,
        make_jobs: Callable[[uuid.UUID, Sequence[Window]], list[NewJob]],
    ) -> tuple[Row, bool, BackfillPlan]:
        """Creates the backfill and the run of its missing windows (``make_jobs`` builds
        their jobs), or returns the identical active one. Returns (backfill row, existing,
        plan).

        Raises:
            FailedPrecondition: another active backfill overlaps (named).
            ResourceExhausted: the window jobs would exceed a ``max_queued`` quota.
        """
        now = now_of(self.db, ctx)
        async with self.db.transaction(ctx) as conn:
            lock = f"orch:backfill:{ctx.tenant}:{request.source_id}:{request.job_type}"
            await conn.execute(query("backfill_lock"), {"lock": lock})
            await source_check_enabled_many(conn, ctx.tenant, [request.source_id])
            plan = await self._plan(conn, ctx.tenant, request)
            if plan.identical is not None:
                identical_id: uuid.UUID = plan.identical["id"]
            elif plan.overlapping:
                raise _overlap_error(request, plan.overlapping)
            else:
                identical_id = await self._insert(conn, ctx, request, plan, make_jobs, now)
        return await self.backfill_get(ctx.tenant, identical_id), plan.identical is not None, plan

    async def _insert(
        self,
        conn: Conn,
        ctx: TxContext,
        request: BackfillRequest,
        plan: BackfillPlan,
        make_jobs: Callable[[uuid.UUID, Sequence[Window]], list[NewJob]],
        now: datetime,
    ) -> uuid.UUID:
        """Inserts the backfill and the run of its missing windows (caller's transaction)."""
        backfill_id = uuid.UUID(new_id(self.db.clock))
        cur = await conn.execute(
            query("backfill_insert"),
            {
                "id": backfill_id,
                "tenant": ctx.tenant,
                "source_id": request.source_id,
                "job_type": request.job_type,
                "range_start": request.start,
                "range_end": request.end,
                "window_size": request.window_size,
                "priority": request.priority,
                "state": "planned" if plan.missing else "succeeded",
                "reason": ctx.reason,
                "ticket": ctx.ticket,
                "window_count": len(plan.windows),
                "suppressed_window_count": plan.suppressed,
                "created_by": ctx.actor_subject,
                "now": now,
            },
        )
        row = await cur.fetchone()
        assert row is not None
        if plan.missing:
            run = NewRun(
                id=uuid.UUID(new_id(self.db.clock)),
                name=f"backfill {request.job_type} {request.start.isoformat()}"
                f"..{request.end.isoformat()}",
                source_id=request.source_id,
                correlation_id=f"backfill:{backfill_id}",
                labels={"backfill": str(backfill_id)},
                backfill_id=backfill_id,
            )
            await run_insert(conn, ctx, run, make_jobs(backfill_id, plan.missing), now)
            await conn.execute(query("backfill_set_run"), {"id": backfill_id, "run_id": run.id})
        await audit_entry_write(conn, ctx, "backfill.create", f"backfills/{backfill_id}", now)
        return backfill_id

    async def backfill_get(self, tenant: str, backfill_id: uuid.UUID) -> Row:
        """The backfill with its progress columns (``jobs``, ``succeeded_jobs``,
        ``dead_jobs``, ``canceled_jobs``, ``started_jobs``, ``run_state``)."""
        return await fetch_one(
            self.db, "backfill_get", {"tenant": tenant, "id": backfill_id}, "backfill", backfill_id
        )

    async def backfill_list(
        self, tenant: str, *, source_id: uuid.UUID | None, after_id: uuid.UUID | None, limit: int
    ) -> list[Row]:
        filters = {"source_id": source_id}
        ids = await fetch_page(self.db, "backfill_list", tenant, filters, after_id, limit)
        return [await self.backfill_get(tenant, r["id"]) for r in ids]

    async def backfill_cancel(self, ctx: TxContext, backfill_id: uuid.UUID) -> Row:
        """Cancels the backfill's unfinished window jobs (its run) and marks it canceled."""
        current = await self.backfill_get(ctx.tenant, backfill_id)
        if current["state"] == "canceled":
            return current
        if current["run_id"] is not None and current["run_state"] in ("pending", "running"):
            await self.runs.run_cancel(ctx, current["run_id"])
        elif current["run_id"] is not None or current["state"] == "succeeded":
            raise FailedPrecondition(
                f"backfill {backfill_id} already finished ({current['run_state'] or 'no jobs'})",
                reason="BACKFILL_FINISHED",
                violations=[
                    PreconditionViolation(
                        "BACKFILL_STATE", f"backfills/{backfill_id}", "already finished"
                    )
                ],
            )
        now = now_of(self.db, ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("backfill_set_state"),
                {"tenant": ctx.tenant, "id": backfill_id, "state": "canceled", "now": now},
            )
            if await cur.fetchone() is None:
                raise NotFound("backfill", str(backfill_id))
            await audit_entry_write(conn, ctx, "backfill.cancel", f"backfills/{backfill_id}", now)
        return await self.backfill_get(ctx.tenant, backfill_id)
