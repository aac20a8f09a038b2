"""Job insertion, shared by submits, runs, backfills, replays and the schedule firer: the
idempotency-key resolution, the queued-job caps, the DAG edges and the cancellation of
children born under a dead parent, each a single statement in the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from psycopg.types.json import Jsonb

from orchestrator_core import Aborted, AlreadyExists, JobState, NotFound, Reason, RetryPolicy
from orchestrator_pg._backpressure import check_queue_caps
from orchestrator_pg._db import Row, TxContext
from orchestrator_pg._queries import query
from orchestrator_pg._tx import Conn, settle

T = TypeVar("T")
IDEMPOTENCY_RACE_RETRIES = 3


@dataclass(frozen=True)
class NewJob:
    """A validated job, ready to insert.

    ``depends_on_keys`` name other jobs of the same :meth:`RunStore.run_create` call;
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


class IdempotencyRace(Exception):
    """Lost an insert race on an idempotency key; the transaction is retried."""


async def retrying_races(operation: Callable[[], Awaitable[T]]) -> T:
    for _ in range(IDEMPOTENCY_RACE_RETRIES - 1):
        try:
            return await operation()
        except IdempotencyRace:
            continue
    try:
        return await operation()
    except IdempotencyRace:
        raise Aborted(
            "concurrent requests keep submitting jobs with the same idempotency keys; retry",
            reason="IDEMPOTENCY_RACE",
        ) from None


async def job_insert_many(
    conn: Conn,
    ctx: TxContext,
    jobs: Sequence[NewJob],
    run_id: uuid.UUID | None,
    now: datetime,
    *,
    all_or_nothing: bool,
    rows: dict[uuid.UUID, Row] | None = None,
) -> dict[uuid.UUID, uuid.UUID]:
    """Inserts jobs and their edges in one statement each, in the caller's transaction.

    A spec whose idempotency key exists for the tenant (or repeats an earlier spec of the
    batch) is not inserted: it resolves to that job, and specs depending on it depend on
    that job. With ``all_or_nothing`` (CreateRun) such a spec refuses the whole batch.
    New children of a parent that is already dead or canceled are canceled at once with
    ``upstream_failed``.

    ``rows``, when given, receives the inserted jobs as the insert returned them, unless a
    later statement of this call changed some of them (a child doomed at birth): then it
    stays empty, and the caller reads what it needs back.

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
            query("job_get_by_idempotency_keys_for_share"), {"tenant": ctx.tenant, "keys": keys}
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
        parents = sorted({key_to_id[k] for k in job.depends_on_keys} | set(job.depends_on_job_ids))
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
        returned = {row["id"]: row for row in await cur.fetchall()}
        if returned.keys() != new_ids:
            # a concurrent request inserted one of our idempotency keys after we looked;
            # it has committed by now (ON CONFLICT waited for it), so a retry sees it
            raise IdempotencyRace
        if rows is not None:
            rows.update(returned)
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
        if rows is not None:
            rows.clear()  # the insert's rows are stale now
    return resolved


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
