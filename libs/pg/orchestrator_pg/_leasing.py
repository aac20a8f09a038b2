"""Leasing operations on the ledger: claim, complete, fail, expire.

These are the storage half of the leases service (its gRPC half arrives with the worker
protocol); they live beside the scheduler's operations because both write the same job
rows through the same triggers. Each call is one transaction over a batch.

Fencing: completions and failures name (job id, lease id); a pair that is not the job's
current lease is reported back as ``lease_lost`` and changes nothing. Completing the same
lease twice with the same result digest is accepted (a retried request), with another
result it is ``lease_lost``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from orchestrator_core import (
    JobState,
    Reason,
    RetryPolicy,
    backoff_s,
    decide_failure,
    failure_reason,
)
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._ledger import Conn, settle
from orchestrator_pg._queries import query

DEFAULT_LEASE_TTL_S = 30.0
EXPIRE_BATCH = 500
LEASE_LOST = "lease_lost"
ALREADY_COMPLETED = "already_completed"


@dataclass(frozen=True)
class Completion:
    """A worker's result for one lease."""

    job_id: uuid.UUID
    lease_id: uuid.UUID
    result: dict[str, Any] = field(default_factory=dict)
    result_digest: str = ""


@dataclass(frozen=True)
class Failure:
    """A worker's failure report for one lease."""

    job_id: uuid.UUID
    lease_id: uuid.UUID
    error_class: str
    message: str = ""
    retryable: bool = True
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one completion or failure: ``ok`` or why not (``lease_lost``)."""

    job_id: uuid.UUID
    lease_id: uuid.UUID
    ok: bool
    error_reason: str = ""
    new_state: str = ""


class LeaseLedger:
    """Claim / complete / fail / expire over the job ledger.

    Args:
        db: the database.
        rng: randomness for backoff jitter (seed it in tests).
    """

    def __init__(self, db: Database, *, rng: random.Random | None = None) -> None:
        self.db = db
        self.rng = rng or random.Random()

    async def claim(
        self,
        ctx: TxContext,
        *,
        worker_id: str,
        job_types: Sequence[str],
        limit: int,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        tenants: Sequence[str] | None = None,
    ) -> list[Row]:
        """Leases up to ``limit`` ready jobs of the given types (of ``tenants``, or any
        tenant when None); returns the leased rows."""
        now = ctx.now or self.db.clock.now()
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("job_claim_batch"),
                {
                    "job_types": list(job_types),
                    "tenants": list(tenants) if tenants is not None else None,
                    "limit": limit,
                    "worker_id": worker_id,
                    "lease_ttl_s": lease_ttl_s,
                    "now": now,
                },
            )
            rows = await cur.fetchall()
            await settle(conn, [], [], [r["run_id"] for r in rows], now, lock_runs=False)
        return rows

    async def complete(
        self, ctx: TxContext, completions: Sequence[Completion], *, tenants: Sequence[str] | None
    ) -> list[Outcome]:
        """Completes leases in one statement; the rest are reported, not applied."""
        if not completions:
            return []
        now = ctx.now or self.db.clock.now()
        tenant_filter = list(tenants) if tenants is not None else None
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("job_complete_many"),
                {
                    "ids": [c.job_id for c in completions],
                    "lease_ids": [c.lease_id for c in completions],
                    "results": [Jsonb(c.result) for c in completions],
                    "result_digests": [c.result_digest for c in completions],
                    "tenants": tenant_filter,
                    "now": now,
                },
            )
            done = await cur.fetchall()
            done_ids = {r["id"] for r in done}
            await settle(conn, list(done_ids), [], [r["run_id"] for r in done], now)
            rest = [c for c in completions if c.job_id not in done_ids]
            status = await self._lease_status(conn, [c.job_id for c in rest], tenant_filter)
        outcomes = []
        for c in completions:
            if c.job_id in done_ids:
                outcomes.append(Outcome(c.job_id, c.lease_id, True, new_state="succeeded"))
                continue
            row = status.get(c.job_id)
            repeat = (
                row is not None
                and row["state"] == JobState.SUCCEEDED
                and row["lease_id"] == c.lease_id
                and (row["result_digest"] or "") == c.result_digest
            )
            outcomes.append(
                Outcome(
                    c.job_id,
                    c.lease_id,
                    repeat,
                    "" if repeat else LEASE_LOST,
                    row["state"] if row else "",
                )
            )
        return outcomes

    async def fail(
        self, ctx: TxContext, failures: Sequence[Failure], *, tenants: Sequence[str] | None
    ) -> list[Outcome]:
        """Applies failures: retry with backoff while attempts and retryability allow, else
        dead (with a dead-letter entry); children of dead jobs are canceled."""
        if not failures:
            return []
        now = ctx.now or self.db.clock.now()
        tenant_filter = list(tenants) if tenants is not None else None
        by_id = {f.job_id: f for f in failures}
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("job_leased_for_update"),
                {
                    "ids": [f.job_id for f in failures],
                    "lease_ids": [f.lease_id for f in failures],
                    "tenants": tenant_filter,
                },
            )
            rows = await cur.fetchall()
            decided = await self._apply_failures(
                conn,
                [(row, by_id[row["id"]]) for row in rows],
                now,
            )
        outcomes = []
        for f in failures:
            state = decided.get(f.job_id)
            outcomes.append(
                Outcome(
                    f.job_id,
                    f.lease_id,
                    state is not None,
                    "" if state is not None else LEASE_LOST,
                    state or "",
                )
            )
        return outcomes

    async def expire(self, ctx: TxContext, *, limit: int = EXPIRE_BATCH) -> list[Outcome]:
        """Watchdog pass: leases past expiry go back to ready with backoff, or dead when
        their attempts are used up. Returns what it did."""
        now = ctx.now or self.db.clock.now()
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(query("job_expired_for_update"), {"now": now, "limit": limit})
            rows = await cur.fetchall()
            decided = await self._apply_failures(
                conn,
                [
                    (
                        row,
                        Failure(
                            row["id"],
                            row["lease_id"],
                            "lease_expired",
                            f"lease held by {row['worker_id']} expired at "
                            f"{row['lease_expires_at'].isoformat()}",
                            retryable=True,
                        ),
                    )
                    for row in rows
                ],
                now,
                expired=True,
            )
        return [Outcome(r["id"], r["lease_id"], True, "", decided[r["id"]]) for r in rows]

    async def _apply_failures(
        self, conn: Conn, pairs: list[tuple[Row, Failure]], now: datetime, *, expired: bool = False
    ) -> dict[uuid.UUID, str]:
        if not pairs:
            return {}
        cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "ids",
                "states",
                "reasons",
                "not_befores",
                "error_classes",
                "error_messages",
                "retryables",
            )
        }
        for row, failure in pairs:
            policy = RetryPolicy(
                row["max_attempts"],
                row["initial_backoff_s"],
                row["max_backoff_s"],
                row["backoff_multiplier"],
            )
            state = decide_failure(policy, row["attempt"], failure.retryable)
            if state == JobState.READY:
                reason = Reason.LEASE_EXPIRED if expired else Reason.RETRY_BACKOFF
                delay = backoff_s(policy, row["attempt"], self.rng, failure.retry_after_s)
                not_before: datetime | None = now + timedelta(seconds=delay)
            else:
                reason = failure_reason(policy, row["attempt"], failure.retryable)
                not_before = None
            cols["ids"].append(row["id"])
            cols["states"].append(state.value)
            cols["reasons"].append(reason.value)
            cols["not_befores"].append(not_before)
            cols["error_classes"].append(failure.error_class)
            cols["error_messages"].append(failure.message[:4000])
            cols["retryables"].append(failure.retryable)
        cur = await conn.execute(query("job_fail_many"), {**cols, "now": now})
        changed = await cur.fetchall()
        dead = [r["id"] for r in changed if r["state"] == JobState.DEAD]
        if dead:
            await conn.execute(query("dead_letter_insert_many"), {"ids": dead, "now": now})
        await settle(conn, [], dead, [r["run_id"] for r in changed], now)
        return {r["id"]: r["state"] for r in changed}

    async def _lease_status(
        self, conn: Conn, ids: list[uuid.UUID], tenants: list[str] | None
    ) -> dict[uuid.UUID, Row]:
        if not ids:
            return {}
        cur = await conn.execute(query("job_lease_status_many"), {"ids": ids, "tenants": tenants})
        return {r["id"]: r for r in await cur.fetchall()}
