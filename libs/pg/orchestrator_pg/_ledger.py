"""The job ledger: sources, runs, jobs and their DAG in PostgreSQL.

Every method that changes state runs in one transaction; the outbox triggers write one
event per transition inside it. Methods take already-validated inputs (the service layer
validates requests) and raise :mod:`orchestrator_core.errors` for what only the database
can know: unknown ids, idempotency conflicts, illegal transitions.

Lock order, to keep concurrent transactions from deadlocking: job rows (in id order), then
run rows (in id order).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from orchestrator_core import (
    TERMINAL_JOB_STATES,
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    JobState,
    NotFound,
    PreconditionViolation,
    Reason,
    RetryPolicy,
    new_id,
)
from orchestrator_core.redaction import redact_text
from orchestrator_pg._backpressure import check_queue_caps
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._queries import query

Conn = psycopg.AsyncConnection[Row]
T = TypeVar("T")
IDEMPOTENCY_RACE_RETRIES = 3


class _IdempotencyRace(Exception):
    """Lost an insert race on an idempotency key; the transaction is retried."""


async def _retrying_races(operation: Callable[[], Awaitable[T]]) -> T:
    for _ in range(IDEMPOTENCY_RACE_RETRIES - 1):
        try:
            return await operation()
        except _IdempotencyRace:
            continue
    try:
        return await operation()
    except _IdempotencyRace:
        raise Aborted(
            "concurrent requests keep submitting jobs with the same idempotency keys; retry",
            reason="IDEMPOTENCY_RACE",
        ) from None


@dataclass(frozen=True)
class NewJob:
    """A validated job, ready to insert.

    ``depends_on_keys`` name other jobs of the same :meth:`Ledger.create_run` call;
    ``depends_on_job_ids`` name jobs that exist already.
    """

    id: uuid.UUID
    job_type: str
    payload: dict[str, Any]
    payload_digest: str
    retry_policy: RetryPolicy
    key: str = ""
    project: str = ""
    source_id: uuid.UUID | None = None
    priority: int = 0
    idempotency_key: str | None = None
    correlation_id: str = ""
    not_before: datetime | None = None
    event_window_start: datetime | None = None
    event_window_end: datetime | None = None
    replay_of: uuid.UUID | None = None
    trace_parent: str = ""
    trace_state: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    depends_on_keys: tuple[str, ...] = ()
    depends_on_job_ids: tuple[uuid.UUID, ...] = ()


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
class SourceFields:
    """The writable fields of a source."""

    name: str = ""
    source_type: str = ""
    host: str = ""
    base_url: str = ""
    enabled: bool = True
    paused: bool = False
    paused_reason: str = ""
    paused_ticket: str = ""
    job_types: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    max_active: int | None = None  # None: no cap


@dataclass(frozen=True)
class SubmittedJob:
    """A job row and whether it existed already (idempotency key matched)."""

    job: Row
    existing: bool


@dataclass(frozen=True)
class CreatedRun:
    """A run, its jobs, and whether the run existed already (idempotency key matched)."""

    run: Row
    jobs: list[Row]
    existing: bool


class Ledger:
    """Storage operations of the scheduler (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        # Tenant APIs: every transaction is confined to its tenant by row-level security, and
        # reads go through Database.reader (the second wall behind each query's tenant filter).
        self.db = db.isolated()

    async def _one(
        self, name: str, params: dict[str, Any], resource_type: str, resource_id: object
    ) -> Row:
        """The single row of a named read, or NotFound for ``resource_type``."""
        async with self._reader(params) as conn:
            cur = await conn.execute(query(name), params)
            row = await cur.fetchone()
        if row is None:
            raise NotFound(resource_type, str(resource_id))
        return row

    async def _all(self, name: str, params: dict[str, Any]) -> list[Row]:
        """Every row of a named read."""
        async with self._reader(params) as conn:
            cur = await conn.execute(query(name), params)
            return await cur.fetchall()

    def _reader(self, params: dict[str, Any]) -> AbstractAsyncContextManager[Conn]:
        """An isolated read for the tenant the query names; a plain connection for the
        few platform reads without one (e.g. the firer's next due schedule)."""
        tenant = params.get("tenant")
        return self.db.reader(tenant) if tenant else self.db.connection()

    def _now(self, ctx: TxContext) -> datetime:
        return ctx.now or self.db.clock.now()

    # ---------------------------------------------------------------- tenants

    async def tenant_upsert(self, tenant: str, display_name: str = "") -> Row:
        async with self.db.transaction(TxContext(tenant=tenant)) as conn:
            cur = await conn.execute(
                query("tenant_upsert"), {"id": tenant, "display_name": display_name}
            )
            row = await cur.fetchone()
            assert row is not None
            return row

    async def tenant_list(self) -> list[Row]:
        async with self.db.connection() as conn:
            cur = await conn.execute(query("tenant_list"))
            return await cur.fetchall()

    # ---------------------------------------------------------------- sources

    async def source_create(self, ctx: TxContext, fields: SourceFields) -> Row:
        params = _source_params(fields) | {
            "id": uuid.UUID(new_id(self.db.clock)),
            "tenant": ctx.tenant,
            "now": self._now(ctx),
        }
        try:
            async with self.db.transaction(ctx) as conn:
                cur = await conn.execute(query("source_insert"), params)
                row = await cur.fetchone()
                await _audit(conn, ctx, "source.create", f"sources/{params['id']}", params["now"])
        except pg_errors.UniqueViolation:
            raise AlreadyExists(
                f"a source named '{fields.name}' exists already in tenant '{ctx.tenant}'",
                reason="SOURCE_NAME_TAKEN",
                metadata={"name": fields.name},
            ) from None
        except pg_errors.ForeignKeyViolation as exc:
            raise _foreign_key_error(exc, ctx.tenant) from None
        assert row is not None
        return row

    async def source_get(self, tenant: str, source_id: uuid.UUID) -> Row:
        return await self._one(
            "source_get", {"tenant": tenant, "id": source_id}, "source", source_id
        )

    async def source_list(
        self,
        tenant: str,
        *,
        source_type: str | None,
        enabled: bool | None,
        after_id: uuid.UUID | None,
        limit: int,
    ) -> list[Row]:
        return await self._all(
            "source_list",
            {
                "tenant": tenant,
                "source_type": source_type,
                "enabled": enabled,
                "after_id": after_id,
                "limit": limit,
            },
        )

    async def source_update(
        self,
        ctx: TxContext,
        source_id: uuid.UUID,
        fields: SourceFields,
        mask: Sequence[str],
        *,
        expected_version: int = 0,
    ) -> Row:
        """Changes the fields named in ``mask``; with ``expected_version`` (optimistic
        concurrency) only if the source is still at that version, else ABORTED."""
        params = _source_params(fields) | {
            "tenant": ctx.tenant,
            "id": source_id,
            "mask": list(mask),
            "expected_version": expected_version,
            "now": self._now(ctx),
        }
        try:
            async with self.db.transaction(ctx) as conn:
                cur = await conn.execute(query("source_update"), params)
                row = await cur.fetchone()
                if row is None and expected_version:
                    cur = await conn.execute(
                        query("source_version"), {"tenant": ctx.tenant, "id": source_id}
                    )
                    current = await cur.fetchone()
                    if current is not None:
                        raise Aborted(
                            f"source {source_id} is at version {current['version']}, not "
                            f"{expected_version}: it changed since you read it; read it again "
                            "and reapply your change",
                            reason="VERSION_MISMATCH",
                            metadata={"current_version": str(current["version"])},
                        )
                if row is not None:
                    await _audit(conn, ctx, "source.update", f"sources/{source_id}", params["now"])
        except pg_errors.UniqueViolation:
            raise AlreadyExists(
                f"a source named '{fields.name}' exists already in tenant '{ctx.tenant}'",
                reason="SOURCE_NAME_TAKEN",
                metadata={"name": fields.name},
            ) from None
        if row is None:
            raise NotFound("source", str(source_id))
        return row

    async def source_delete(self, ctx: TxContext, source_id: uuid.UUID) -> Row:
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("source_open_job_count"), {"tenant": ctx.tenant, "id": source_id}
            )
            counted = await cur.fetchone()
            open_jobs = int(counted["open_jobs"]) if counted else 0
            if open_jobs:
                raise FailedPrecondition(
                    f"source {source_id} still has {open_jobs} open jobs; cancel them or "
                    "let them finish before deleting the source",
                    reason="SOURCE_HAS_OPEN_JOBS",
                    violations=[
                        PreconditionViolation(
                            "SOURCE_OPEN_JOBS", f"sources/{source_id}", f"{open_jobs} open jobs"
                        )
                    ],
                )
            cur = await conn.execute(
                query("source_soft_delete"),
                {"tenant": ctx.tenant, "id": source_id, "now": self._now(ctx)},
            )
            row = await cur.fetchone()
            if row is not None:
                await _audit(conn, ctx, "source.delete", f"sources/{source_id}", self._now(ctx))
        if row is None:
            raise NotFound("source", str(source_id))
        return row

    # ---------------------------------------------------------------- runs

    async def run_create(self, ctx: TxContext, run: NewRun, jobs: Sequence[NewJob]) -> CreatedRun:
        """Creates a run with its whole DAG atomically, or returns the run that already has
        the same idempotency key."""
        return await _retrying_races(lambda: self._run_create_once(ctx, run, jobs))

    async def _run_create_once(
        self, ctx: TxContext, run: NewRun, jobs: Sequence[NewJob]
    ) -> CreatedRun:
        if run.idempotency_key:
            existing = await self._run_by_idempotency_key(ctx.tenant, run.idempotency_key)
            if existing is not None:
                return existing
        now = self._now(ctx)
        try:
            async with self.db.transaction(ctx) as conn:
                run_row, job_rows = await self._run_insert(conn, ctx, run, jobs, now)
        except pg_errors.UniqueViolation as exc:
            # Lost a race with a concurrent CreateRun carrying the same idempotency key.
            if run.idempotency_key and "runs_tenant_idempotency" in str(exc):
                existing = await self._run_by_idempotency_key(ctx.tenant, run.idempotency_key)
                if existing is not None:
                    return existing
            raise
        except pg_errors.ForeignKeyViolation as exc:
            raise _foreign_key_error(exc, ctx.tenant) from None
        assert run_row is not None
        return CreatedRun(run=run_row, jobs=job_rows, existing=False)

    async def _run_insert(
        self, conn: Conn, ctx: TxContext, run: NewRun, jobs: Sequence[NewJob], now: datetime
    ) -> tuple[Row, list[Row]]:
        """Inserts a run and its DAG in the caller's transaction; returns the run (with
        its settled state) and its jobs."""
        await self._check_sources(conn, ctx.tenant, [run.source_id, *(j.source_id for j in jobs)])
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
        await self._insert_jobs(conn, ctx, jobs, run.id, now, all_or_nothing=True)
        await settle(conn, [], [], [run.id], now)
        cur = await conn.execute(query("run_get"), {"tenant": ctx.tenant, "id": run.id})
        run_row = await cur.fetchone()
        assert run_row is not None
        cur = await conn.execute(
            query("job_list_for_run"), {"tenant": ctx.tenant, "run_id": run.id}
        )
        return run_row, await cur.fetchall()

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
        return await self._one("run_get", {"tenant": tenant, "id": run_id}, "run", run_id)

    async def run_list(
        self,
        tenant: str,
        *,
        states: Sequence[str] | None,
        source_id: uuid.UUID | None,
        project: str | None,
        after_id: uuid.UUID | None,
        limit: int,
    ) -> list[Row]:
        return await self._all(
            "run_list",
            {
                "tenant": tenant,
                "states": list(states) if states else None,
                "source_id": source_id,
                "project": project,
                "after_id": after_id,
                "limit": limit,
            },
        )

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
        now = self._now(ctx)
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
            await _audit(conn, ctx, "run.cancel", f"runs/{run_id}", now)
            cur = await conn.execute(query("run_get"), {"tenant": ctx.tenant, "id": run_id})
            row = await cur.fetchone()
        assert row is not None
        return row

    # ---------------------------------------------------------------- jobs

    async def job_submit(
        self, ctx: TxContext, jobs: Sequence[NewJob], run_id: uuid.UUID | None = None
    ) -> list[SubmittedJob]:
        """Inserts jobs in one transaction, standalone or into an open run (``depends_on_keys``
        then name jobs of that run or of this batch). A job whose idempotency key exists for
        the tenant is not inserted and the existing one is returned instead (same order)."""
        return await _retrying_races(lambda: self._job_submit_once(ctx, jobs, run_id))

    async def _job_submit_once(
        self, ctx: TxContext, jobs: Sequence[NewJob], run_id: uuid.UUID | None
    ) -> list[SubmittedJob]:
        now = self._now(ctx)
        try:
            async with self.db.transaction(ctx) as conn:
                await self._check_sources(conn, ctx.tenant, [j.source_id for j in jobs])
                if run_id is not None:
                    jobs = await self._join_run(conn, ctx, run_id, jobs)
                resolved = await self._insert_jobs(
                    conn, ctx, jobs, run_id, now, all_or_nothing=False
                )
                added = sum(1 for spec, job_id in resolved.items() if spec == job_id)
                if run_id is not None and added:
                    await conn.execute(
                        query("run_add_jobs"), {"id": run_id, "added": added, "now": now}
                    )
                    await settle(conn, [], [], [run_id], now)
                cur = await conn.execute(
                    query("job_get_many"),
                    {"tenant": ctx.tenant, "ids": sorted(set(resolved.values()))},
                )
                by_id = {row["id"]: row for row in await cur.fetchall()}
        except pg_errors.ForeignKeyViolation as exc:
            raise _foreign_key_error(exc, ctx.tenant) from None
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
        now = self._now(ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("job_get_for_update"), {"tenant": ctx.tenant, "id": job_id}
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound("job", str(job_id))
            if row["state"] != JobState.DEAD:
                raise FailedPrecondition(
                    f"job {job_id} is {row['state']}; only dead jobs can be retried",
                    reason="ILLEGAL_TRANSITION",
                    violations=[
                        PreconditionViolation(
                            "JOB_STATE", f"jobs/{job_id}", f"state is {row['state']}"
                        )
                    ],
                    metadata={"current": row["state"], "target": JobState.READY.value},
                )
            await conn.execute(query("job_retry"), {"tenant": ctx.tenant, "id": job_id, "now": now})
            await conn.execute(
                query("dead_letter_mark_replayed"),
                {
                    "tenant": ctx.tenant,
                    "job_id": job_id,
                    "actor": ctx.actor_subject,
                    "reason": ctx.reason,
                    "now": now,
                },
            )
            await _audit(conn, ctx, "job.retry", f"jobs/{job_id}", now)
            if row["run_id"]:
                await settle(conn, [], [], [row["run_id"]], now)
            cur = await conn.execute(query("job_get"), {"tenant": ctx.tenant, "id": job_id})
            updated = await cur.fetchone()
        assert updated is not None
        return updated

    async def job_get(self, tenant: str, job_id: uuid.UUID) -> Row:
        return await self._one("job_get", {"tenant": tenant, "id": job_id}, "job", job_id)

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

    async def job_list(
        self,
        tenant: str,
        *,
        states: Sequence[str] | None,
        job_type: str | None,
        run_id: uuid.UUID | None,
        source_id: uuid.UUID | None,
        after_id: uuid.UUID | None,
        limit: int,
    ) -> list[Row]:
        return await self._all(
            "job_list",
            {
                "tenant": tenant,
                "states": list(states) if states else None,
                "job_type": job_type,
                "run_id": run_id,
                "source_id": source_id,
                "after_id": after_id,
                "limit": limit,
            },
        )

    async def job_cancel(self, ctx: TxContext, job_id: uuid.UUID) -> Row:
        now = self._now(ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("job_get_for_update"), {"tenant": ctx.tenant, "id": job_id}
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound("job", str(job_id))
            if JobState(row["state"]) in TERMINAL_JOB_STATES:
                raise FailedPrecondition(
                    f"job {job_id} is already {row['state']}; only pending, ready or leased "
                    "jobs can be canceled",
                    reason="ILLEGAL_TRANSITION",
                    violations=[
                        PreconditionViolation(
                            "JOB_STATE", f"jobs/{job_id}", f"state is {row['state']}"
                        )
                    ],
                    metadata={"current": row["state"], "target": JobState.CANCELED.value},
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
            await _audit(conn, ctx, "job.cancel", f"jobs/{job_id}", now)
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

    # ---------------------------------------------------------------- shared mechanics

    async def _check_sources(
        self, conn: Conn, tenant: str, source_ids: Iterable[uuid.UUID | None]
    ) -> None:
        wanted = sorted({sid for sid in source_ids if sid is not None})
        if not wanted:
            return
        cur = await conn.execute(query("source_get_many"), {"tenant": tenant, "ids": wanted})
        found = {row["id"]: row for row in await cur.fetchall()}
        for sid in wanted:
            if sid not in found:
                raise NotFound("source", str(sid))
            if not found[sid]["enabled"]:
                raise FailedPrecondition(
                    f"source '{found[sid]['name']}' ({sid}) is disabled and accepts no new jobs; "
                    "enable it (UpdateSource with enabled=true) first",
                    reason="SOURCE_DISABLED",
                    violations=[
                        PreconditionViolation("SOURCE_ENABLED", f"sources/{sid}", "disabled")
                    ],
                )

    async def _insert_jobs(
        self,
        conn: Conn,
        ctx: TxContext,
        jobs: Sequence[NewJob],
        run_id: uuid.UUID | None,
        now: datetime,
        *,
        all_or_nothing: bool,
    ) -> dict[uuid.UUID, uuid.UUID]:
        """Inserts jobs and their edges in one statement each.

        A spec whose idempotency key exists for the tenant (or repeats an earlier spec of the
        batch) is not inserted: it resolves to that job, and specs depending on it depend on
        that job. With ``all_or_nothing`` (CreateRun) such a spec refuses the whole batch.
        New children of a parent that is already dead or canceled are canceled at once with
        ``upstream_failed``.

        Returns:
            ``{spec id: job id}`` — the spec's own id when inserted, else the existing job's.
        """
        if not jobs:
            return {}
        # backpressure first: a refused batch must not have touched anything
        await check_queue_caps(conn, ctx.tenant, jobs, all_or_nothing=all_or_nothing)
        keys = sorted({j.idempotency_key for j in jobs if j.idempotency_key})
        existing_by_key: dict[str, Row] = {}
        if keys:
            cur = await conn.execute(
                query("job_by_idempotency_keys_for_share"), {"tenant": ctx.tenant, "keys": keys}
            )
            existing_by_key = {row["idempotency_key"]: row for row in await cur.fetchall()}
        if existing_by_key and all_or_nothing:
            taken = sorted(existing_by_key)
            raise AlreadyExists(
                f"job idempotency keys already used in tenant '{ctx.tenant}': "
                f"{', '.join(taken)}; a run is created whole or not at all — drop those jobs "
                "or change their keys",
                reason="JOB_IDEMPOTENCY_KEY_TAKEN",
                metadata={"idempotency_keys": ",".join(taken)},
            )

        resolved: dict[uuid.UUID, uuid.UUID] = {}
        first_by_key: dict[str, uuid.UUID] = {}
        parent_state: dict[uuid.UUID, str] = {}
        for job in jobs:
            key = job.idempotency_key
            if key and key in existing_by_key:
                resolved[job.id] = existing_by_key[key]["id"]
                parent_state[resolved[job.id]] = existing_by_key[key]["state"]
            elif key and key in first_by_key:
                resolved[job.id] = first_by_key[key]
            else:
                resolved[job.id] = job.id
                if key:
                    first_by_key[key] = job.id
        new_jobs = [j for j in jobs if resolved[j.id] == j.id]
        key_to_id = {j.key: resolved[j.id] for j in jobs if j.key}
        new_ids = {j.id for j in new_jobs}

        external = sorted({pid for j in new_jobs for pid in j.depends_on_job_ids})
        if external:
            cur = await conn.execute(
                query("job_states_for_share"), {"tenant": ctx.tenant, "ids": external}
            )
            parent_state.update({row["id"]: row["state"] for row in await cur.fetchall()})
            for pid in external:
                if pid not in parent_state:
                    raise NotFound("job", str(pid), f"parent job '{pid}' not found")

        doomed: list[uuid.UUID] = []
        edges: list[tuple[uuid.UUID, uuid.UUID]] = []
        cols: dict[str, list[Any]] = {name: [] for name in _JOB_COLUMNS}
        for job in new_jobs:
            parents = sorted(
                {key_to_id[k] for k in job.depends_on_keys} | set(job.depends_on_job_ids)
            )
            edges.extend((pid, job.id) for pid in parents)
            waiting = sum(
                1 for pid in parents if pid in new_ids or parent_state[pid] != JobState.SUCCEEDED
            )
            if any(
                pid not in new_ids and parent_state[pid] in (JobState.DEAD, JobState.CANCELED)
                for pid in parents
            ):
                doomed.append(job.id)
            values = _job_values(job, run_id, waiting)
            for name in _JOB_COLUMNS:
                cols[name].append(values[name])
        if new_jobs:
            cur = await conn.execute(
                query("job_insert_many"), {**cols, "tenant": ctx.tenant, "now": now}
            )
            inserted = {row["id"] for row in await cur.fetchall()}
            if inserted != new_ids:
                # a concurrent request inserted one of our idempotency keys after we looked;
                # it has committed by now (ON CONFLICT waited for it), so a retry sees it
                raise _IdempotencyRace
        if edges:
            await conn.execute(
                query("dag_edge_insert_many"),
                {
                    "tenant": ctx.tenant,
                    "run_id": run_id,
                    "parents": [p for p, _ in edges],
                    "children": [c for _, c in edges],
                },
            )
        if doomed:
            cur = await conn.execute(
                query("job_cancel_many"),
                {
                    "tenant": ctx.tenant,
                    "ids": doomed,
                    "reason": Reason.UPSTREAM_FAILED.value,
                    "now": now,
                },
            )
            await cur.fetchall()
            # a job doomed at birth may have siblings in this batch that depend on it
            await settle(conn, [], doomed, [], now)
        return resolved


REASON_REQUIRED_ACTIONS = ("quota.", "backfill.")


async def _audit(conn: Conn, ctx: TxContext, action: str, target: str, now: datetime) -> None:
    """Records an operator action (who, scopes, reason, ticket) in the same transaction; the
    entry is also an ``audit.<action>`` event, so it is chained like every other event.

    Raises:
        InvalidArgument: A quota or backfill action without an operator reason (the
            transaction rolls back: nothing changes).
    """
    if action.startswith(REASON_REQUIRED_ACTIONS) and not ctx.reason.strip():
        raise InvalidArgument(
            f"{action} needs an operator reason (it is recorded in the audit trail)",
            [FieldViolation("operator.reason", "required for quota and backfill actions")],
        )
    await conn.execute(
        query("audit_entry_insert"),
        {
            "id": uuid.UUID(new_id(None)),
            "tenant": ctx.tenant,
            "actor_subject": ctx.actor_subject,
            "actor_scopes": list(ctx.actor_scopes),
            "action": action,
            "target": target,
            "reason": redact_text(ctx.reason),
            "ticket": redact_text(ctx.ticket),
            "now": now,
        },
    )


def _job_values(job: NewJob, run_id: uuid.UUID | None, waiting: int) -> dict[str, Any]:
    policy = job.retry_policy
    # Stored exactly as submitted (a live-looking credential was refused at submit; display
    # paths redact): the worker gets these bytes, and the digest is of them.
    return {
        "id": job.id,
        "project": job.project,
        "run_id": run_id,
        "source_id": job.source_id,
        "job_type": job.job_type,
        "key": job.key,
        "state": JobState.PENDING.value if waiting else JobState.READY.value,
        "reason": (Reason.WAITING_ON_PARENTS if waiting else Reason.SUBMITTED).value,
        "priority": job.priority,
        "idempotency_key": job.idempotency_key,
        "correlation_id": job.correlation_id,
        "payload": Jsonb(job.payload),
        "payload_digest": job.payload_digest,
        "pending_parents": waiting,
        "max_attempts": policy.max_attempts,
        "initial_backoff_s": policy.initial_backoff_s,
        "max_backoff_s": policy.max_backoff_s,
        "backoff_multiplier": policy.multiplier,
        "not_before": job.not_before,
        "event_window_start": job.event_window_start,
        "event_window_end": job.event_window_end,
        "replay_of": job.replay_of,
        "trace_parent": job.trace_parent,
        "trace_state": job.trace_state,
        "labels": Jsonb(job.labels),
    }


async def settle(
    conn: Conn,
    succeeded: Sequence[uuid.UUID],
    failed: Sequence[uuid.UUID],
    run_ids: Iterable[uuid.UUID | None],
    now: datetime,
    *,
    lock_runs: bool = True,
) -> None:
    """After jobs changed state: release children of the succeeded, cancel what is
    downstream of the dead/canceled, then re-derive the touched runs' states.

    ``lock_runs=False`` is for transitions that cannot finish a run (claims): they may only
    move a run from pending to running, which needs no serialisation.
    """
    runs = {rid for rid in run_ids if rid is not None}
    if succeeded:
        cur = await conn.execute(
            query("job_release_children"), {"ids": list(succeeded), "now": now}
        )
        runs.update(row["run_id"] for row in await cur.fetchall() if row["run_id"])
    if failed:
        cur = await conn.execute(query("job_cancel_descendants"), {"ids": list(failed), "now": now})
        runs.update(row["run_id"] for row in await cur.fetchall() if row["run_id"])
    if runs:
        ordered = sorted(runs)
        if lock_runs:
            await conn.execute(query("run_lock_many"), {"run_ids": ordered})
        await conn.execute(query("run_refresh_state"), {"run_ids": ordered, "now": now})


_JOB_COLUMNS = (
    "id",
    "project",
    "run_id",
    "source_id",
    "job_type",
    "key",
    "state",
    "reason",
    "priority",
    "idempotency_key",
    "correlation_id",
    "payload",
    "payload_digest",
    "pending_parents",
    "max_attempts",
    "initial_backoff_s",
    "max_backoff_s",
    "backoff_multiplier",
    "not_before",
    "event_window_start",
    "event_window_end",
    "replay_of",
    "trace_parent",
    "trace_state",
    "labels",
)


def _source_params(fields: SourceFields) -> dict[str, Any]:
    return {
        "name": fields.name,
        "source_type": fields.source_type,
        "host": fields.host,
        "base_url": fields.base_url,
        "enabled": fields.enabled,
        "paused": fields.paused,
        "paused_reason": fields.paused_reason,
        "paused_ticket": fields.paused_ticket,
        "job_types": list(fields.job_types),
        "labels": Jsonb(fields.labels),
        "max_active": fields.max_active,
    }


def _foreign_key_error(exc: pg_errors.ForeignKeyViolation, tenant: str) -> Exception:
    """A missing tenant is the caller's problem (NOT_FOUND); any other foreign key failure
    is ours, and stays an internal error."""
    constraint = exc.diag.constraint_name or ""
    if constraint.endswith("_tenant_fkey"):
        return _tenant_not_found(tenant)
    return exc


def _tenant_not_found(tenant: str) -> NotFound:
    return NotFound(
        "tenant",
        tenant,
        f"tenant '{tenant}' is not registered; register it with "
        f"`stella orchestrator tenants add {tenant}`",
    )
