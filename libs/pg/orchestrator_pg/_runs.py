"""Runs (``orchestrator.runs``) and their DAG edges (``orchestrator.dag_edges``): a run is
created whole with its jobs, or returned as it is when its idempotency key exists. Queries:
``queries/runs.sql``, ``queries/dag_edges.sql``.

Lock order, to keep concurrent transactions from deadlocking: job rows (in id order), then
run rows (in id order).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from orchestrator_core import (
    FailedPrecondition,
    JobState,
    NotFound,
    PreconditionViolation,
    Reason,
    plan_resume,
)
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._job_insert import NewJob, job_insert_many, retrying_races
from orchestrator_pg._queries import query
from orchestrator_pg._sources import source_check_enabled_many
from orchestrator_pg._tx import (
    Conn,
    audit_entry_write,
    fetch_one,
    integrity_error,
    now_of,
    paged_read,
    settle,
)


@dataclass(frozen=True)
class NewRun:
    """A validated run header."""

    id: uuid.UUID
    project: str = ""
    name: str = ""
    source_id: uuid.UUID | None = None
    correlation_id: str = ""
    idempotency_key: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    schedule_id: uuid.UUID | None = None  # set on the runs a schedule fires
    backfill_id: uuid.UUID | None = None  # set on the run holding a backfill's windows


@dataclass(frozen=True)
class CreatedRun:
    """A run, its jobs, and whether the run existed already (idempotency key matched)."""

    run: Row
    jobs: list[Row]
    existing: bool


@dataclass(frozen=True)
class ResumedRun:
    """A run after a resume, and how many of its jobs came back."""

    run: Row
    retried: int  # dead jobs back to ready
    revived: int  # jobs canceled as upstream_failed back to pending or ready


class RunStore:
    """Storage of runs and their DAG (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        # Tenant APIs: confined to their tenant by row-level security (see SourceStore).
        self.db = db.isolated()

    async def run_create(self, ctx: TxContext, run: NewRun, jobs: Sequence[NewJob]) -> CreatedRun:
        """Creates a run with its whole DAG atomically, or returns the run that already has
        the same idempotency key."""
        return await retrying_races(lambda: self._run_create_once(ctx, run, jobs))

    async def _run_create_once(
        self, ctx: TxContext, run: NewRun, jobs: Sequence[NewJob]
    ) -> CreatedRun:
        if run.idempotency_key:
            existing = await self._run_by_idempotency_key(ctx.tenant, run.idempotency_key)
            if existing is not None:
                return existing
        now = now_of(self.db, ctx)
        try:
            async with self.db.transaction(ctx) as conn:
                run_row, job_rows = await run_insert(conn, ctx, run, jobs, now)
        except pg_errors.UniqueViolation as exc:
            # Lost a race with a concurrent CreateRun carrying the same idempotency key.
            if run.idempotency_key and "runs_tenant_idempotency" in str(exc):
                existing = await self._run_by_idempotency_key(ctx.tenant, run.idempotency_key)
                if existing is not None:
                    return existing
            raise
        except pg_errors.ForeignKeyViolation as exc:
            raise integrity_error(exc, ctx.tenant) from None
        assert run_row is not None
        return CreatedRun(run=run_row, jobs=job_rows, existing=False)

    async def _run_by_idempotency_key(self, tenant: str, key: str) -> CreatedRun | None:
        async with self.db.reader(tenant) as conn:
            cur = await conn.execute(
                query("run_get_by_idempotency_key"), {"tenant": tenant, "idempotency_key": key}
            )
            run_row = await cur.fetchone()
            if run_row is None:
                return None
            cur = await conn.execute(
                query("job_list_for_run"), {"tenant": tenant, "run_id": run_row["id"]}
            )
            return CreatedRun(run=run_row, jobs=await cur.fetchall(), existing=True)

    async def run_get(self, tenant: str, run_id: uuid.UUID) -> Row:
        return await fetch_one(self.db, "run_get", {"tenant": tenant, "id": run_id}, "run", run_id)

    run_list = paged_read("run_list", "states", "source_id", "project")

    async def run_job_counts(
        self, tenant: str, run_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, int]]:
        """``{run_id: {job_state: count}}`` for the given runs."""
        counts: dict[uuid.UUID, dict[str, int]] = {rid: {} for rid in run_ids}
        if not run_ids:
            return counts
        async with self.db.reader(tenant) as conn:
            cur = await conn.execute(
                query("run_job_counts"), {"tenant": tenant, "run_ids": list(run_ids)}
            )
            for row in await cur.fetchall():
                counts[row["run_id"]][row["state"]] = int(row["n"])
        return counts

    async def run_dag(self, tenant: str, run_id: uuid.UUID) -> tuple[Row, list[Row], list[Row]]:
        """The run, its jobs (id order) and its edges."""
        async with self.db.reader(tenant) as conn:
            cur = await conn.execute(query("run_get"), {"tenant": tenant, "id": run_id})
            run_row = await cur.fetchone()
            if run_row is None:
                raise NotFound("run", str(run_id))
            cur = await conn.execute(
                query("job_list_for_run"), {"tenant": tenant, "run_id": run_id}
            )
            jobs = await cur.fetchall()
            cur = await conn.execute(
                query("dag_edge_list_for_run"), {"tenant": tenant, "run_id": run_id}
            )
            edges = await cur.fetchall()
        return run_row, jobs, edges

    async def run_cancel(self, ctx: TxContext, run_id: uuid.UUID) -> Row:
        now = now_of(self.db, ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(query("run_get"), {"tenant": ctx.tenant, "id": run_id})
            run_row = await cur.fetchone()
            if run_row is None:
                raise NotFound("run", str(run_id))
            if run_row["state"] in ("succeeded", "failed", "canceled"):
                raise FailedPrecondition(
                    f"run {run_id} is already {run_row['state']}; only pending or running "
                    "runs can be canceled",
                    reason="RUN_ALREADY_FINISHED",
                    violations=[
                        PreconditionViolation(
                            "RUN_STATE", f"runs/{run_id}", f"state is {run_row['state']}"
                        )
                    ],
                )
            cur = await conn.execute(
                query("job_cancel_open_in_run"),
                {
                    "tenant": ctx.tenant,
                    "run_id": run_id,
                    "reason": Reason.USER_CANCELED.value,
                    "now": now,
                },
            )
            canceled = await cur.fetchall()
            await settle(conn, [], [r["id"] for r in canceled], [run_id], now)
            await audit_entry_write(conn, ctx, "run.cancel", f"runs/{run_id}", now)
            cur = await conn.execute(query("run_get"), {"tenant": ctx.tenant, "id": run_id})
            row = await cur.fetchone()
        assert row is not None
        return row

    async def run_resume(self, ctx: TxContext, run_id: uuid.UUID) -> ResumedRun:
        """Resumes a failed run from its failure, in one transaction: its dead jobs go back
        to ready (``orchestrator_core.resume`` decides which jobs come back), the jobs their
        failure canceled as ``upstream_failed`` are revived, succeeded jobs stay as they are,
        the dead-letter entries of the retried jobs are marked replayed, the action is
        audited (``run.resume``) and the run is running again.

        Raises:
            NotFound: No such run in the tenant.
            FailedPrecondition: The run is not failed (``RUN_NOT_FAILED``; a concurrent
                resume that won finds it running), or has no dead job to resume.
        """
        now = now_of(self.db, ctx)
        params = {"tenant": ctx.tenant, "run_id": run_id, "now": now}
        async with self.db.transaction(ctx) as conn:
            # Jobs first, then the run: the lock order of every writer.
            cur = await conn.execute(query("job_lock_for_run"), params)
            jobs = {row["id"]: (row["state"], row["reason"]) for row in await cur.fetchall()}
            await conn.execute(query("run_lock_many"), {"run_ids": [run_id]})
            cur = await conn.execute(query("run_get"), {"tenant": ctx.tenant, "id": run_id})
            run_row = await cur.fetchone()
            if run_row is None:
                raise NotFound("run", str(run_id))
            if run_row["state"] != "failed":
                raise _run_state_error(
                    run_id,
                    run_row["state"],
                    f"run {run_id} is {run_row['state']}; only failed runs can be resumed",
                    reason="RUN_NOT_FAILED",
                )
            cur = await conn.execute(query("dag_edge_list_for_run"), params)
            parents: dict[uuid.UUID, list[uuid.UUID]] = {}
            for edge in await cur.fetchall():
                parents.setdefault(edge["child_job_id"], []).append(edge["parent_job_id"])
            elsewhere = sorted({p for ps in parents.values() for p in ps} - jobs.keys())
            succeeded_elsewhere: frozenset[uuid.UUID] = frozenset()
            if elsewhere:
                cur = await conn.execute(
                    query("job_get_many"), {"tenant": ctx.tenant, "ids": elsewhere}
                )
                succeeded_elsewhere = frozenset(
                    row["id"] for row in await cur.fetchall() if row["state"] == JobState.SUCCEEDED
                )
            plan = plan_resume(jobs, parents, succeeded_elsewhere)
            if not plan.retry:
                raise _run_state_error(
                    run_id,
                    run_row["state"],
                    f"run {run_id} has no dead job to resume",
                    reason="RUN_NOTHING_TO_RESUME",
                )
            await conn.execute(query("job_resume_dead_many"), {**params, "ids": list(plan.retry)})
            await conn.execute(
                query("job_revive_many"),
                {**params, "ids": list(plan.revive), "pending_parents": list(plan.revive.values())},
            )
            await conn.execute(
                query("dead_letter_mark_replayed"),
                {
                    "tenant": ctx.tenant,
                    "job_ids": list(plan.retry),
                    "actor": ctx.actor_subject,
                    "reason": ctx.reason,
                    "now": now,
                },
            )
            await audit_entry_write(conn, ctx, "run.resume", f"runs/{run_id}", now)
            await settle(conn, [], [], [run_id], now)
            cur = await conn.execute(query("run_get"), {"tenant": ctx.tenant, "id": run_id})
            row = await cur.fetchone()
        assert row is not None
        return ResumedRun(row, len(plan.retry), len(plan.revive))

    async def run_prioritize(self, ctx: TxContext, run_id: uuid.UUID, priority: int) -> int:
        """Sets the priority of the run's queued jobs; returns how many changed."""
        await self.run_get(ctx.tenant, run_id)
        now = now_of(self.db, ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("run_prioritize"),
                {"tenant": ctx.tenant, "run_id": run_id, "priority": priority, "now": now},
            )
            changed = len(await cur.fetchall())
            await audit_entry_write(conn, ctx, "run.prioritize", f"runs/{run_id}", now)
        return changed


def _run_state_error(
    run_id: uuid.UUID, state: str, message: str, *, reason: str
) -> FailedPrecondition:
    return FailedPrecondition(
        message,
        reason=reason,
        violations=[PreconditionViolation("RUN_STATE", f"runs/{run_id}", f"state is {state}")],
        metadata={"state": state},
    )


async def run_insert(
    conn: Conn, ctx: TxContext, run: NewRun, jobs: Sequence[NewJob], now: datetime
) -> tuple[Row, list[Row]]:
    """Inserts a run and its DAG in the caller's transaction; returns the run (with
    its settled state) and its jobs."""
    await source_check_enabled_many(conn, ctx.tenant, [run.source_id, *(j.source_id for j in jobs)])
    await conn.execute(
        query("run_insert"),
        {
            "id": run.id,
            "tenant": ctx.tenant,
            "project": run.project,
            "name": run.name,
            "source_id": run.source_id,
            "correlation_id": run.correlation_id,
            "idempotency_key": run.idempotency_key,
            "labels": Jsonb(run.labels),
            "job_total": len(jobs),
            "schedule_id": run.schedule_id,
            "backfill_id": run.backfill_id,
            "now": now,
        },
    )
    await job_insert_many(conn, ctx, jobs, run.id, now, all_or_nothing=True)
    await settle(conn, [], [], [run.id], now)
    cur = await conn.execute(query("run_get"), {"tenant": ctx.tenant, "id": run.id})
    run_row = await cur.fetchone()
    assert run_row is not None
    cur = await conn.execute(query("job_list_for_run"), {"tenant": ctx.tenant, "run_id": run.id})
    return run_row, await cur.fetchall()
