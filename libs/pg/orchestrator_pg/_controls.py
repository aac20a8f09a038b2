"""Operator controls beyond sources and quotas: pausing the jobs of a tenant or a job type,
prioritizing a job or a run, and replaying a succeeded job. Every control is audited with
the operator's reason and ticket in the same transaction.
"""

from __future__ import annotations

import uuid

from orchestrator_core import (
    FailedPrecondition,
    JobState,
    NotFound,
    PreconditionViolation,
    RetryPolicy,
    new_id,
)
from orchestrator_pg._db import Row, TxContext
from orchestrator_pg._ledger import Conn, Ledger, NewJob, _audit
from orchestrator_pg._queries import query


class ControlLedger(Ledger):
    """The ledger with operator controls."""

    async def jobs_pause(self, ctx: TxContext, job_type: str, *, paused: bool) -> Row:
        """Pauses (or resumes) the tenant's jobs (``job_type`` ``""``) or one job type's:
        they stay ready and are not leased until resumed. Returns the quota row holding
        the flag."""
        now = self._now(ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("jobs_pause_upsert"),
                {
                    "id": uuid.UUID(new_id(self.db.clock)),
                    "tenant": ctx.tenant,
                    "job_type": job_type,
                    "paused": paused,
                    "reason": ctx.reason,
                    "ticket": ctx.ticket,
                    "now": now,
                },
            )
            row = await cur.fetchone()
            target = f"job-types/{job_type}" if job_type else "tenant"
            await _audit(conn, ctx, "jobs.pause" if paused else "jobs.resume", target, now)
        assert row is not None
        return row

    async def job_prioritize(self, ctx: TxContext, job_id: uuid.UUID, priority: int) -> Row:
        now = self._now(ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("job_prioritize"),
                {"tenant": ctx.tenant, "id": job_id, "priority": priority, "now": now},
            )
            if await cur.fetchone() is None:
                current = await self._job_row(conn, ctx.tenant, job_id)
                raise FailedPrecondition(
                    f"job {job_id} is {current['state']}; only pending or ready jobs can be "
                    "prioritized",
                    reason="JOB_NOT_QUEUED",
                    violations=[
                        PreconditionViolation(
                            "JOB_STATE", f"jobs/{job_id}", f"state is {current['state']}"
                        )
                    ],
                )
            await _audit(conn, ctx, "job.prioritize", f"jobs/{job_id}", now)
        return await self.job_get(ctx.tenant, job_id)

    async def run_prioritize(self, ctx: TxContext, run_id: uuid.UUID, priority: int) -> int:
        """Sets the priority of the run's queued jobs; returns how many changed."""
        await self.run_get(ctx.tenant, run_id)
        now = self._now(ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("run_prioritize"),
                {"tenant": ctx.tenant, "run_id": run_id, "priority": priority, "now": now},
            )
            changed = len(await cur.fetchall())
            await _audit(conn, ctx, "run.prioritize", f"runs/{run_id}", now)
        return changed

    async def job_replay(self, ctx: TxContext, job_id: uuid.UUID) -> Row:
        """A new standalone job doing the work of a succeeded job again (same type, payload,
        source, event window, retry policy), with ``replay_of`` naming the original."""
        original = await self.job_get(ctx.tenant, job_id)
        if original["state"] != JobState.SUCCEEDED:
            raise FailedPrecondition(
                f"job {job_id} is {original['state']}; only succeeded jobs can be replayed "
                "(retry a dead job instead)",
                reason="JOB_NOT_SUCCEEDED",
                violations=[
                    PreconditionViolation(
                        "JOB_STATE", f"jobs/{job_id}", f"state is {original['state']}"
                    )
                ],
            )
        replay = NewJob(
            id=uuid.UUID(new_id(self.db.clock)),
            job_type=original["job_type"],
            payload=original["payload"],
            payload_digest=original["payload_digest"],
            retry_policy=RetryPolicy(
                original["max_attempts"],
                original["initial_backoff_s"],
                original["max_backoff_s"],
                original["backoff_multiplier"],
            ),
            project=original["project"],
            source_id=original["source_id"],
            priority=original["priority"],
            correlation_id=original["correlation_id"],
            event_window_start=original["event_window_start"],
            event_window_end=original["event_window_end"],
            replay_of=job_id,
            labels=original["labels"],
        )
        now = self._now(ctx)
        async with self.db.transaction(ctx) as conn:
            await self._check_sources(conn, ctx.tenant, [replay.source_id])
            await self._insert_jobs(conn, ctx, [replay], None, now, all_or_nothing=True)
            await _audit(conn, ctx, "job.replay", f"jobs/{job_id}", now)
        return await self.job_get(ctx.tenant, replay.id)

    async def _job_row(self, conn: Conn, tenant: str, job_id: uuid.UUID) -> Row:
        cur = await conn.execute(query("job_get"), {"tenant": tenant, "id": job_id})
        row = await cur.fetchone()
        if row is None:
            raise NotFound("job", str(job_id))
        return row
