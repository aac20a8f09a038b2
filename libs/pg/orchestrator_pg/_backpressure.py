"""Backpressure: a tenant's queued-job caps (``quotas.max_queued``), checked on every job
insert, in the insert's transaction, by :func:`~orchestrator_pg._job_insert.job_insert_many`.

A tenant without a ``max_queued`` cap pays one small read and nothing else. With caps, a
per-tenant advisory transaction lock serialises the check with the insert, so concurrent
submitters cannot both squeeze under the cap. Jobs whose idempotency key exists (or repeats
an earlier job of the batch) are not new and never count. Lower priorities are shed first:
a job of priority p may only fill the queue up to :func:`queue_limit` of the cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import psycopg

from orchestrator_core import ResourceExhausted
from orchestrator_pg._db import Row
from orchestrator_pg._queries import query

Conn = psycopg.AsyncConnection[Row]
QUEUE_RETRY_AFTER_S = 5.0
# (lowest priority, percent of max_queued) — checked in order; below every bound: the last.
QUEUE_SHED_STEPS: tuple[tuple[int, int], ...] = ((0, 100), (-100, 80))
QUEUE_SHED_FLOOR_PERCENT = 60


def queue_limit(max_queued: int, priority: int) -> int:
    """How many queued jobs a job of ``priority`` may find (itself included) under a cap of
    ``max_queued``: 100 % at priority >= 0, 80 % at -100..-1, 60 % below -100 (floor)."""
    percent = QUEUE_SHED_FLOOR_PERCENT
    for lowest, share in QUEUE_SHED_STEPS:
        if priority >= lowest:
            percent = share
            break
    return max_queued * percent // 100


class QueuedJob(Protocol):
    """What the check reads of a job about to be inserted."""

    @property
    def job_type(self) -> str: ...
    @property
    def idempotency_key(self) -> str | None: ...
    @property
    def priority(self) -> int: ...


async def check_queue_caps(
    conn: Conn, tenant: str, jobs: Sequence[QueuedJob], *, all_or_nothing: bool
) -> None:
    """Refuses the batch (ResourceExhausted) if its new jobs would overfill a queue cap."""
    if not jobs:
        return
    cur = await conn.execute(
        query("quota_queue_caps"),
        {"tenant": tenant, "job_types": sorted({j.job_type for j in jobs})},
    )
    caps = {row["job_type"]: int(row["max_queued"]) for row in await cur.fetchall()}
    if not caps:
        return
    await conn.execute(query("quota_tenant_lock"), {"tenant": tenant})
    keys = sorted({j.idempotency_key for j in jobs if j.idempotency_key})
    taken: set[str] = set()
    if keys:
        cur = await conn.execute(
            query("job_get_by_idempotency_keys_for_share"), {"tenant": tenant, "keys": keys}
        )
        taken = {row["idempotency_key"] for row in await cur.fetchall()}
        if taken and all_or_nothing:
            return  # the insert refuses the whole run (JOB_IDEMPOTENCY_KEY_TAKEN)
    new_jobs: list[QueuedJob] = []
    seen: set[str] = set()
    for job in jobs:
        key = job.idempotency_key
        if key and (key in taken or key in seen):
            continue
        if key:
            seen.add(key)
        new_jobs.append(job)
    if not new_jobs:
        return
    cur = await conn.execute(query("job_queued_counts"), {"tenant": tenant})
    total = 0
    by_type: dict[str, int] = {}
    for row in await cur.fetchall():
        if row["is_total"]:
            total = int(row["n"])
        else:
            by_type[row["job_type"]] = int(row["n"])
    for job_type, max_queued in sorted(caps.items()):
        under = [j for j in new_jobs if not job_type or j.job_type == job_type]
        if not under:
            continue
        queued = by_type.get(job_type, 0) if job_type else total
        lowest = min(j.priority for j in under)
        limit = queue_limit(max_queued, lowest)
        if queued + len(under) > limit:
            scope = f"job type '{job_type}'" if job_type else "the tenant"
            raise ResourceExhausted(
                f"the queue of {scope} in tenant '{tenant}' is full: {queued} jobs are "
                f"pending or ready, max_queued is {max_queued} and jobs of priority {lowest} "
                f"may fill it up to {limit}; {len(under)} more do not fit. Retry later, "
                "submit fewer jobs, or raise the quota",
                QUEUE_RETRY_AFTER_S,
                reason="QUEUE_FULL",
                metadata={
                    "job_type": job_type,
                    "queued": str(queued),
                    "max_queued": str(max_queued),
                    "limit": str(limit),
                    "requested": str(len(under)),
                },
            )
