"""Jobs (``orchestrator.jobs``): submits (standalone or into an open run), reads, the
operator's cancel, retry, prioritize and replay. The hot path's claims and completions are
:mod:`orchestrator_pg._leasing`'s; the insertion mechanics are
:mod:`orchestrator_pg._job_insert`'s. Queries: ``queries/jobs.sql``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from psycopg import errors as pg_errors

from orchestrator_core import (
    TERMINAL_JOB_STATES,
    AlreadyExists,
    FailedPrecondition,
    JobState,
    NotFound,
    PreconditionViolation,
    Reason,
    RetryPolicy,
    new_id,
)
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._job_insert import NewJob, job_insert_many, retrying_races
from orchestrator_pg._queries import query
from orchestrator_pg._sources import source_check_enabled_many
from orchestrator_pg._tx import (
    Conn,
    audit_entry_write,
    fetch_all,
    fetch_one,
    fields_params,
    integrity_error,
    now_of,
    paged_read,
    settle,
)


@dataclass(frozen=True)
class SubmittedJob:
    """A job row and whether it existed already (idempotency key matched)."""

    job: Row
    existing: bool


@dataclass(frozen=True)
class JobSearch:
    """Filters of :meth:`JobStore.job_search`; None (or empty ``states``) means any. The time
    range [since, until) applies to creation, or with ``failed_in_range`` to failed attempts."""

    states: tuple[str, ...] = ()
    job_type: str | None = None
    source_id: uuid.UUID | None = None
    error_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    failed_in_range: bool = False
    after_id: uuid.UUID | None = None
    limit: int = 50


class JobStore:
    """Storage of jobs outside the hot path (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        # Tenant APIs: confined to their tenant by row-level security (see SourceStore).
        self.db = db.isolated()

    async def job_submit(
        self, ctx: TxContext, jobs: Sequence[NewJob], run_id: uuid.UUID | None = None
    ) -> list[SubmittedJob]:
        """Inserts jobs in one transaction, standalone or into an open run (``depends_on_keys``
        then name jobs of that run or of this batch). A job whose idempotency key exists for
        the tenant is not inserted and the existing one is returned instead (same order)."""
        return await retrying_races(lambda: self._job_submit_once(ctx, jobs, run_id))

    async def _job_submit_once(
        self, ctx: TxContext, jobs: Sequence[NewJob], run_id: uuid.UUID | None
    ) -> list[SubmittedJob]:
        now = now_of(self.db, ctx)
        try:
            async with self.db.transaction(ctx) as conn:
                await source_check_enabled_many(conn, ctx.tenant, [j.source_id for j in jobs])
                if run_id is not None:
                    jobs = await self._join_run(conn, ctx, run_id, jobs)
                by_id: dict[uuid.UUID, Row] = {}
                resolved = await job_insert_many(
                    conn, ctx, jobs, run_id, now, all_or_nothing=False, rows=by_id
                )
                added = sum(1 for spec, job_id in resolved.items() if spec == job_id)
                if run_id is not None and added:
                    await conn.execute(
                        query("run_add_jobs"), {"id": run_id, "added": added, "now": now}
                    )
                    await settle(conn, [], [], [run_id], now)
                # The insert returned the new jobs; only jobs it did not insert (idempotency
                # hits) or changed afterwards are read back.
                missing = sorted(set(resolved.values()) - by_id.keys())
                if missing:
                    cur = await conn.execute(
                        query("job_get_many"), {"tenant": ctx.tenant, "ids": missing}
                    )
                    by_id.update((row["id"], row) for row in await cur.fetchall())
        except pg_errors.ForeignKeyViolation as exc:
            raise integrity_error(exc, ctx.tenant) from None
        return [
            SubmittedJob(by_id[resolved[job.id]], existing=resolved[job.id] != job.id)
            for job in jobs
        ]

    async def _join_run(
        self, conn: Conn, ctx: TxContext, run_id: uuid.UUID, jobs: Sequence[NewJob]
    ) -> list[NewJob]:
        """Locks the run the jobs join; refuses keys the run already has; turns ``depends_on``
        keys that name jobs already in the run into ``depends_on_job_ids``."""
        cur = await conn.execute(query("run_get_for_update"), {"tenant": ctx.tenant, "id": run_id})
        if await cur.fetchone() is None:
            raise NotFound("run", str(run_id))
        batch_keys = {j.key for j in jobs if j.key}
        wanted = sorted(batch_keys | {k for j in jobs for k in j.depends_on_keys})
        if not wanted:
            return list(jobs)
        cur = await conn.execute(
            query("job_ids_by_keys_in_run"),
            {"tenant": ctx.tenant, "run_id": run_id, "keys": wanted},
        )
        in_run = {row["key"]: row["id"] for row in await cur.fetchall()}
        taken = sorted(batch_keys & in_run.keys())
        if taken:
            raise AlreadyExists(
                f"run {run_id} already has jobs with keys {', '.join(taken)}; keys name one "
                "job of a run",
                reason="JOB_KEY_TAKEN",
                metadata={"keys": ",".join(taken)},
            )
        for key in wanted:
            if key not in batch_keys and key not in in_run:
                raise NotFound("job", key, f"run {run_id} has no job with key '{key}'")
        return [
            replace(
                j,
                depends_on_keys=tuple(k for k in j.depends_on_keys if k in batch_keys),
                depends_on_job_ids=(
                    *j.depends_on_job_ids,
                    *(in_run[k] for k in j.depends_on_keys if k not in batch_keys),
                ),
            )
            for j in jobs
        ]

    async def job_retry(self, ctx: TxContext, job_id: uuid.UUID) -> Row:
        """Operator retry: a dead job goes back to ready."""
        now = now_of(self.db, ctx)
        async with self.db.transaction(ctx) as conn:
            row = await _job_row(conn, ctx.tenant, job_id, "job_get_for_update")
            if row["state"] != JobState.DEAD:
                raise _job_state_error(
                    job_id,
                    row["state"],
                    f"job {job_id} is {row['state']}; only dead jobs can be retried",
                    target=JobState.READY,
                )
            await conn.execute(query("job_retry"), {"tenant": ctx.tenant, "id": job_id, "now": now})
            await conn.execute(
                query("dead_letter_mark_replayed"),
                {
                    "tenant": ctx.tenant,
                    "job_ids": [job_id],
                    "actor": ctx.actor_subject,
                    "reason": ctx.reason,
                    "now": now,
                },
            )
            await audit_entry_write(conn, ctx, "job.retry", f"jobs/{job_id}", now)
            if row["run_id"]:
                await settle(conn, [], [], [row["run_id"]], now)
            cur = await conn.execute(query("job_get"), {"tenant": ctx.tenant, "id": job_id})
            updated = await cur.fetchone()
        assert updated is not None
        return updated

    async def job_get(self, tenant: str, job_id: uuid.UUID) -> Row:
        return await fetch_one(self.db, "job_get", {"tenant": tenant, "id": job_id}, "job", job_id)

    async def job_parents(self, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        """``{child_id: [parent_id, ...]}`` for the given jobs (ids already tenant checked)."""
        parents: dict[uuid.UUID, list[uuid.UUID]] = {jid: [] for jid in job_ids}
        if not job_ids:
            return parents
        async with self.db.connection() as conn:
            cur = await conn.execute(query("dag_edge_parents_of"), {"job_ids": list(job_ids)})
            for row in await cur.fetchall():
                parents[row["child_job_id"]].append(row["parent_job_id"])
        return parents

    job_list = paged_read("job_list", "states", "job_type", "run_id", "source_id")

    async def job_search(self, tenant: str, search: JobSearch) -> list[Row]:
        """A page of the tenant's jobs matching ``search`` (the Console's job list), in id
        order: summary columns only (no payload or result)."""
        params = {"tenant": tenant, **fields_params(search)}
        params["states"] = params["states"] or None
        return await fetch_all(self.db, "job_search", params)

    async def job_cancel(self, ctx: TxContext, job_id: uuid.UUID) -> Row:
        now = now_of(self.db, ctx)
        async with self.db.transaction(ctx) as conn:
            row = await _job_row(conn, ctx.tenant, job_id, "job_get_for_update")
            if JobState(row["state"]) in TERMINAL_JOB_STATES:
                raise _job_state_error(
                    job_id,
                    row["state"],
                    f"job {job_id} is already {row['state']}; only pending, ready or leased "
                    "jobs can be canceled",
                    target=JobState.CANCELED,
                )
            await conn.execute(
                query("job_cancel_many"),
                {
                    "tenant": ctx.tenant,
                    "ids": [job_id],
                    "reason": Reason.USER_CANCELED.value,
                    "now": now,
                },
            )
            runs = [row["run_id"]] if row["run_id"] else []
            await settle(conn, [], [job_id], runs, now)
            await audit_entry_write(conn, ctx, "job.cancel", f"jobs/{job_id}", now)
            cur = await conn.execute(query("job_get"), {"tenant": ctx.tenant, "id": job_id})
            updated = await cur.fetchone()
        assert updated is not None
        return updated

    async def job_events(
        self, tenant: str, job_id: uuid.UUID, *, after_seq: int, limit: int
    ) -> list[Row]:
        async with self.db.reader(tenant) as conn:
            cur = await conn.execute(query("job_get"), {"tenant": tenant, "id": job_id})
            if await cur.fetchone() is None:
                raise NotFound("job", str(job_id))
            cur = await conn.execute(
                query("event_list_for_job"),
                {"tenant": tenant, "job_id": job_id, "after_seq": after_seq, "limit": limit},
            )
            return await cur.fetchall()

    async def job_prioritize(self, ctx: TxContext, job_id: uuid.UUID, priority: int) -> Row:
        now = now_of(self.db, ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("job_prioritize"),
                {"tenant": ctx.tenant, "id": job_id, "priority": priority, "now": now},
            )
            if await cur.fetchone() is None:
                current = await _job_row(conn, ctx.tenant, job_id)
                raise _job_state_error(
                    job_id,
                    current["state"],
                    f"job {job_id} is {current['state']}; only pending or ready jobs can be "
                    "prioritized",
                    reason="JOB_NOT_QUEUED",
                )
            await audit_entry_write(conn, ctx, "job.prioritize", f"jobs/{job_id}", now)
        return await self.job_get(ctx.tenant, job_id)

    async def job_replay(self, ctx: TxContext, job_id: uuid.UUID) -> Row:
        """A new standalone job doing the work of a succeeded job again (same type, payload,
        source, event window, retry policy), with ``replay_of`` naming the original."""
        original = await self.job_get(ctx.tenant, job_id)
        if original["state"] != JobState.SUCCEEDED:
            raise _job_state_error(
                job_id,
                original["state"],
                f"job {job_id} is {original['state']}; only succeeded jobs can be replayed "
                "(retry a dead job instead)",
                reason="JOB_NOT_SUCCEEDED",
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
        now = now_of(self.db, ctx)
        async with self.db.transaction(ctx) as conn:
            await source_check_enabled_many(conn, ctx.tenant, [replay.source_id])
            await job_insert_many(conn, ctx, [replay], None, now, all_or_nothing=True)
            await audit_entry_write(conn, ctx, "job.replay", f"jobs/{job_id}", now)
        return await self.job_get(ctx.tenant, replay.id)


async def _job_row(conn: Conn, tenant: str, job_id: uuid.UUID, name: str = "job_get") -> Row:
    """The job (``job_get``, or ``job_get_for_update`` to lock it), or NotFound."""
    cur = await conn.execute(query(name), {"tenant": tenant, "id": job_id})
    row = await cur.fetchone()
    if row is None:
        raise NotFound("job", str(job_id))
    return row


def _job_state_error(
    job_id: uuid.UUID,
    state: str,
    message: str,
    *,
    reason: str = "ILLEGAL_TRANSITION",
    target: JobState | None = None,
) -> FailedPrecondition:
    """The refusal of an operator action the job's state does not allow; an illegal
    transition names the current and target state in its metadata."""
    return FailedPrecondition(
        message,
        reason=reason,
        violations=[PreconditionViolation("JOB_STATE", f"jobs/{job_id}", f"state is {state}")],
        metadata={"current": state, "target": target.value} if target is not None else None,
    )
