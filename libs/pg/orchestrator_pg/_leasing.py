"""Leasing operations on the ledger: claim, heartbeat, progress, artifacts, complete, fail,
release and expire.

These are the storage half of the leases service (``orchestrator_leases`` is the gRPC half);
they live beside the scheduler's operations because both write the same job rows through the
same triggers. Each call is one transaction over a batch, one statement per kind of write.
Method names follow the queries they run (``<table>_<verb>[_many|_batch]``). The hot-path
calls (``job_claim_admitted``, ``lease_extend_many``, ``job_progress_many``,
``artifact_record_many``, ``job_complete_many``, ``lease_release_many``) run in psycopg
pipeline mode: BEGIN, the transaction context, the statement and COMMIT travel together,
which saves round trips per batch.

Fencing: completions and failures name (job id, lease id); a pair that is not the job's
current lease is reported back as ``lease_lost`` and changes nothing. Completing the same
lease twice with the same result digest is accepted (a retried request), with another
result it is ``lease_lost``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
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
    new_id,
)
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._lease_records import (
    DEFAULT_MEDIA_TYPE,
    Artifact,
    Completion,
    Deferral,
    Failure,
    Heartbeat,
    LeaseRef,
    LimitedClaim,
    Outcome,
    Passes,
    ProgressUpdate,
)
from orchestrator_pg._queries import query
from orchestrator_pg._tx import Conn, settle

DEFAULT_LEASE_TTL_S = 30.0
EXPIRE_BATCH = 500
LEASE_LOST = "lease_lost"
ALREADY_COMPLETED = "already_completed"
ARTIFACT_CONFLICT = "artifact_conflict"
# Error class recorded when a worker's stream drops while it holds leases.
WORKER_CRASH = "worker_crash"
# A worker failure of this class is the upstream asking to slow down (HTTP 429): the attempt
# is re-queued after its Retry-After (else THROTTLED_RETRY_AFTER_S) and spends no budget.
THROTTLED_CLASS = "http_429"
THROTTLED_RETRY_AFTER_S = 1.0


Admit = Callable[[Sequence[Row], datetime], Awaitable[dict[uuid.UUID, tuple[datetime, str]]]]
"""Admission of waiting claim candidates (rows with ``id``, ``tenant``, ``source_id``,
``host``, ``slot``, in claim order) at ``now``: returns ``{job id: (not_before, reason)}``
for the candidates that may not go now; every other candidate is leased."""

Allowance = Mapping[tuple[str, str], int]
"""Tokens the caller already holds per ``(tenant, host)``: that many candidates of the key
are leased without calling ``admit``."""

BLACKOUT = "blackout"


def _tenant_filter(tenants: Sequence[str] | None) -> list[str] | None:
    return list(tenants) if tenants is not None else None


class LeaseLedger:
    """Claim / complete / fail / expire over the job ledger.

    Args:
        db: the database.
        rng: randomness for backoff jitter (seed it in tests).
    """

    def __init__(self, db: Database, *, rng: random.Random | None = None) -> None:
        self.db = db
        self.rng = rng or random.Random()

    async def job_claim_batch(
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

    @asynccontextmanager
    async def _pipelined(self, ctx: TxContext, now: datetime) -> AsyncIterator[Conn]:
        # Database.transaction waits for BEGIN and the context statement one by one; in a
        # pipeline they travel with the first real statement.
        async with self.db.connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute(
                query("tx_context_set"),
                {
                    "tenant": ctx.tenant,
                    "actor_subject": ctx.actor_subject,
                    "actor_scopes": ",".join(ctx.actor_scopes),
                    "now_text": now.isoformat(),
                },
            )
            yield conn

    async def job_claim_admitted(
        self,
        ctx: TxContext,
        *,
        worker_ids: Sequence[str],
        job_types: Sequence[str],
        tenants: Sequence[str] | None,
        admit: Admit | None = None,
        allowance: Allowance | None = None,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        per_tenant: int | None = None,
        passes: Passes | None = None,
    ) -> LimitedClaim:
        """Leases up to ``len(worker_ids)`` ready jobs, fairly across tenants, inside every
        cap, in one transaction (the statement and its rules: ``job_claim_admitted`` in
        ``queries/leases.sql``).

        Left out: jobs of paused sources and paused quotas, jobs beyond a quota's
        ``max_active`` / hourly tokens or a source's ``max_active``. Candidates under a
        blackout are deferred to its end. With ``admit`` (rate limiting), a candidate goes
        at once while ``allowance`` holds tokens for its ``(tenant, host)``; the others are
        passed to ``admit`` (e.g. one batched token acquire) in a second phase, which leases
        the admitted ones and defers the rest (``not_before`` moved; no lease, no attempt,
        no event). In the common case (allowance covers the batch, no blackout) the whole
        claim is one pipelined round trip.

        Args:
            ctx: transaction context (actor recorded on the ``job.leased`` events).
            worker_ids: one entry per slot; slot ``k`` (1-based, returned as ``slot``) is
                leased to ``worker_ids[k - 1]``, so one claim serves several sessions.
            job_types: job types to claim.
            tenants: tenants to claim from, or None for every tenant.
            admit: token admission of candidates beyond the allowance (None: no rate
                limiting, every candidate inside the caps goes).
            allowance: tokens already held per ``(tenant, host)`` (with ``admit`` only).
            lease_ttl_s: lease length.
            per_tenant: most candidates per tenant and job type (default: the whole batch);
                smaller values lock fewer rows when many tenants have a backlog.
            passes: the tenants' shares served so far (weighted fair share across claims,
                kept by the caller; see :class:`Passes`). None: every tenant starts even.

        Raises:
            Whatever ``admit`` raises (the transaction rolls back; nothing changes).
        """
        now = ctx.now or self.db.clock.now()
        if not worker_ids or not job_types:
            return LimitedClaim([], [], now)
        limit = len(worker_ids)
        tenant_filter = _tenant_filter(tenants)
        allow = dict(allowance or {})
        async with self._pipelined(ctx, now) as conn:
            await conn.execute(query("job_claim_caps_lock"), {"tenants": tenant_filter})
            cur = await conn.execute(
                query("job_claim_admitted"),
                {
                    "job_types": list(job_types),
                    "tenants": tenant_filter,
                    "limit": limit,
                    "per_tenant": max(1, min(per_tenant or limit, limit)),
                    "pass_tenants": list(passes.of) if passes else [],
                    "pass_values": list(passes.of.values()) if passes else [],
                    "vtime": passes.vtime if passes else 0.0,
                    "worker_ids": list(worker_ids),
                    "lease_ttl_s": lease_ttl_s,
                    "now": now,
                    "limited": admit is not None,
                    "allow_tenants": [k[0] for k in allow],
                    "allow_hosts": [k[1] for k in allow],
                    "allow_counts": list(allow.values()),
                },
            )
            leased: list[Row] = []
            waiting: list[Row] = []
            meta: Row = {}
            for row in await cur.fetchall():
                kind = row["kind"]
                if kind == "leased":
                    leased.append(row)
                elif kind == "waiting":
                    waiting.append(row)
                else:
                    meta = row
            spent: dict[tuple[str, str], int] = {}
            if admit is not None:
                for row in leased:
                    key = (row["tenant"], row["host"])
                    spent[key] = spent.get(key, 0) + 1
            deferred: list[Deferral] = []
            need: list[Row] = []
            for cand in waiting:
                until = cand["blackout_until"]
                if until is not None:
                    deferred.append(Deferral(cand["id"], until, BLACKOUT))
                else:
                    need.append(cand)
            cap_full = bool(meta.get("capped"))
            if need and admit is not None:
                denied = await admit(need, now)
                go = [c for c in need if c["id"] not in denied]
                deferred += [Deferral(i, nb, why) for i, (nb, why) in denied.items()]
                # The statement judged caps on its own leases only; leases of capped keys
                # made here may have filled one, so say so (the caller claims again when a
                # lease ends).
                cap_full = cap_full or any(c["capped"] for c in go)
                if go:
                    leased += await self._job_lease_slots(
                        conn, go, leased, worker_ids, ttl=lease_ttl_s, now=now
                    )
            if deferred:
                await conn.execute(
                    query("job_defer_many"),
                    {
                        "ids": [d.job_id for d in deferred],
                        "not_befores": [d.not_before for d in deferred],
                        "now": now,
                    },
                )
            run_ids = [r["run_id"] for r in leased if r["run_id"] is not None]
            if run_ids:
                await settle(conn, [], [], run_ids, now, lock_runs=False)
        if passes is not None:
            passes.served(leased, meta.get("weights") or {})
        return LimitedClaim(
            leased,
            deferred,
            now,
            quota_wake_at=meta.get("wake_at"),
            cap_full=cap_full,
            spent=spent,
        )

    @staticmethod
    async def _job_lease_slots(
        conn: Conn,
        go: Sequence[Row],
        leased: Sequence[Row],
        worker_ids: Sequence[str],
        *,
        ttl: float,
        now: datetime,
    ) -> list[Row]:
        """Phase two: leases the candidates admitted after waiting, in the slots after
        phase one's, and spends their hourly quota tokens."""
        first = len(leased) + 1
        cur = await conn.execute(
            query("job_lease_slots"),
            {
                "ids": [c["id"] for c in go],
                "slots": list(range(first, first + len(go))),
                "hosts": [c["host"] for c in go],
                "worker_ids": list(worker_ids),
                "lease_ttl_s": ttl,
                "now": now,
            },
        )
        rows = sorted(await cur.fetchall(), key=lambda r: r["slot"])
        capped = [c for c in go if c["capped"]]
        if capped:
            await conn.execute(
                query("quota_spend"),
                {
                    "tenants": [c["tenant"] for c in capped],
                    "job_types": [c["job_type"] for c in capped],
                    "now": now,
                },
            )
        return rows

    async def job_bucket_hosts(self, job_ids: Sequence[uuid.UUID]) -> list[Row]:
        """``id``, ``tenant``, ``source_id`` and ``host`` (the source's, ``""`` without a
        source) of jobs, for their rate-limit keys; unknown ids are left out."""
        if not job_ids:
            return []
        async with self.db.connection() as conn:
            cur = await conn.execute(query("job_bucket_hosts"), {"ids": list(job_ids)})
            return await cur.fetchall()

    async def throttle_insert_many(
        self, ctx: TxContext, throttles: Sequence[dict[str, Any]]
    ) -> None:
        """Inserts upstream throttle records in one statement (each becomes a
        ``throttle.changed`` event). Each dict holds ``tenant``, ``source_id``, ``host``,
        ``origin`` (``upstream_429``/``upstream_503``), ``refill_per_second``, ``capacity``,
        ``effective_refill_per_second``, ``paused_until``, ``reason`` and ``job_id``."""
        if not throttles:
            return
        now = ctx.now or self.db.clock.now()
        columns = {
            "tenants": "tenant",
            "source_ids": "source_id",
            "hosts": "host",
            "origins": "origin",
            "refills": "refill_per_second",
            "capacities": "capacity",
            "effective_refills": "effective_refill_per_second",
            "paused_untils": "paused_until",
            "reasons": "reason",
            "job_ids": "job_id",
        }
        params: dict[str, Any] = {
            param: [t[name] for t in throttles] for param, name in columns.items()
        }
        params["ids"] = [new_id(self.db.clock) for _ in throttles]
        params["created_by"] = ctx.actor_subject
        params["now"] = now
        async with self.db.transaction(ctx) as conn:
            await conn.execute(query("throttle_insert_many"), params)

    async def lease_extend_many(
        self,
        ctx: TxContext,
        beats: Sequence[Heartbeat],
        *,
        tenants: Sequence[str] | None,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
    ) -> list[Outcome]:
        """Extends leases (fenced) in one statement; a heartbeat on a job canceled under the
        same lease is ``lease_lost`` with ``cancel_reason`` set."""
        written, status = await self._fenced_write(
            ctx,
            beats,
            "lease_extend_many",
            {
                "has_progress": [b.has_progress for b in beats],
                "percents": [b.percent for b in beats],
                "messages": [b.message[:4000] for b in beats],
                "lease_ttl_s": lease_ttl_s,
            },
            tenants,
        )
        return [
            Outcome(b.job_id, b.lease_id, True, "", "leased", row["lease_expires_at"])
            if (row := written.get((b.job_id, b.lease_id))) is not None
            else self._lost(b.job_id, b.lease_id, status.get(b.job_id))
            for b in beats
        ]

    async def job_progress_many(
        self, ctx: TxContext, updates: Sequence[ProgressUpdate], *, tenants: Sequence[str] | None
    ) -> list[Outcome]:
        """Records progress of leased jobs (fenced) in one statement."""
        written, status = await self._fenced_write(
            ctx,
            updates,
            "job_progress_many",
            {
                "percents": [u.percent for u in updates],
                "messages": [u.message[:4000] for u in updates],
            },
            tenants,
        )
        return [
            Outcome(u.job_id, u.lease_id, True, "", "leased")
            if (u.job_id, u.lease_id) in written
            else self._lost(u.job_id, u.lease_id, status.get(u.job_id))
            for u in updates
        ]

    async def _fenced_write(
        self,
        ctx: TxContext,
        items: Sequence[LeaseRef],
        name: str,
        params: dict[str, Any],
        tenants: Sequence[str] | None,
    ) -> tuple[dict[tuple[uuid.UUID, uuid.UUID], Row], dict[uuid.UUID, Row]]:
        """Runs the fenced statement ``name`` over ``items`` in one pipelined transaction.

        Returns the rows it wrote by (job id, lease id) and the lease status of the items it
        did not write, from which their ``lease_lost`` outcomes are made (nothing to write:
        no transaction).
        """
        if not items:
            return {}, {}
        now = ctx.now or self.db.clock.now()
        tenant_filter = _tenant_filter(tenants)
        async with self._pipelined(ctx, now) as conn:
            cur = await conn.execute(
                query(name),
                {
                    "ids": [i.job_id for i in items],
                    "lease_ids": [i.lease_id for i in items],
                    **params,
                    "tenants": tenant_filter,
                    "now": now,
                },
            )
            written = {(r["id"], r["lease_id"]): r for r in await cur.fetchall()}
            status = await self._lease_status_many(
                conn,
                [i.job_id for i in items if (i.job_id, i.lease_id) not in written],
                tenant_filter,
            )
        return written, status

    async def artifact_record_many(
        self, ctx: TxContext, artifacts: Sequence[Artifact], *, tenants: Sequence[str] | None
    ) -> list[Outcome]:
        """Records artifacts of leased jobs (fenced). Recording the same name twice in one
        attempt is ok with the same digest and size, ``artifact_conflict`` otherwise."""
        if not artifacts:
            return []
        now = ctx.now or self.db.clock.now()
        tenant_filter = _tenant_filter(tenants)
        async with self._pipelined(ctx, now) as conn:
            results = await self._artifact_insert_many(
                conn, artifacts, [JobState.LEASED.value], tenant_filter, now
            )
        return [
            Outcome(a.job_id, a.lease_id, reason == "", reason, "")
            for a, reason in zip(artifacts, results, strict=True)
        ]

    async def _artifact_insert_many(
        self,
        conn: Conn,
        artifacts: Sequence[Artifact],
        states: list[str],
        tenants: list[str] | None,
        now: datetime,
    ) -> list[str]:
        """Inserts artifacts; returns per artifact "" (recorded or identical repeat),
        ``artifact_conflict`` or ``lease_lost``."""
        cur = await conn.execute(
            query("artifact_insert_many"),
            {
                "ids": [new_id() for _ in artifacts],
                "job_ids": [a.job_id for a in artifacts],
                "lease_ids": [a.lease_id for a in artifacts],
                "names": [a.name for a in artifacts],
                "media_types": [a.media_type or DEFAULT_MEDIA_TYPE for a in artifacts],
                "sizes": [a.size_bytes for a in artifacts],
                "digests": [a.digest for a in artifacts],
                "uris": [a.uri for a in artifacts],
                "states": states,
                "tenants": tenants,
                "now": now,
            },
        )
        inserted = {(r["job_id"], r["name"]) for r in await cur.fetchall()}
        rest = [a for a in artifacts if (a.job_id, a.name) not in inserted]
        existing: dict[tuple[uuid.UUID, str], Row] = {}
        if rest:
            cur = await conn.execute(
                query("artifact_existing_many"),
                {
                    "job_ids": [a.job_id for a in rest],
                    "lease_ids": [a.lease_id for a in rest],
                    "names": [a.name for a in rest],
                    "tenants": tenants,
                },
            )
            existing = {(r["job_id"], r["name"]): r for r in await cur.fetchall()}
        results = []
        seen: dict[tuple[uuid.UUID, str], Artifact] = {}
        for a in artifacts:
            key = (a.job_id, a.name)
            first = seen.setdefault(key, a)
            if key in inserted:
                same = first.digest == a.digest and first.size_bytes == a.size_bytes
                results.append("" if same else ARTIFACT_CONFLICT)
                continue
            row = existing.get(key)
            if row is None:
                results.append(LEASE_LOST)
            elif row["digest"] == a.digest and row["size_bytes"] == a.size_bytes:
                results.append("")
            else:
                results.append(ARTIFACT_CONFLICT)
        return results

    async def lease_release_many(
        self,
        ctx: TxContext,
        leases: Sequence[tuple[uuid.UUID, uuid.UUID]],
        *,
        message: str = "worker disconnected",
    ) -> list[Outcome]:
        """Releases leases at once (fenced by lease id) after the holder's stream dropped:
        back to ready now with reason ``worker_disconnected`` (error class
        ``worker_crash``), or dead with a dead-letter entry when that was the last attempt."""
        if not leases:
            return []
        now = ctx.now or self.db.clock.now()
        async with self._pipelined(ctx, now) as conn:
            cur = await conn.execute(
                query("lease_lock_many"),
                {
                    "ids": [job_id for job_id, _ in leases],
                    "lease_ids": [lease_id for _, lease_id in leases],
                    "tenants": None,
                },
            )
            rows = await cur.fetchall()
            decided = await self._job_fail_apply(
                conn,
                [(row, Failure(row["id"], row["lease_id"], WORKER_CRASH, message)) for row in rows],
                now,
                retry_reason=Reason.WORKER_DISCONNECTED,
                backoff=False,
            )
        return [
            Outcome(
                job_id,
                lease_id,
                job_id in decided,
                "" if job_id in decided else LEASE_LOST,
                decided.get(job_id, ""),
            )
            for job_id, lease_id in leases
        ]

    async def _lease_status_many(
        self, conn: Conn, ids: list[uuid.UUID], tenants: list[str] | None
    ) -> dict[uuid.UUID, Row]:
        if not ids:
            return {}
        cur = await conn.execute(query("lease_status_many"), {"ids": ids, "tenants": tenants})
        return {r["id"]: r for r in await cur.fetchall()}

    @staticmethod
    def _lost(job_id: uuid.UUID, lease_id: uuid.UUID, row: Row | None) -> Outcome:
        cancel = ""
        if row is not None and row["state"] == JobState.CANCELED and row["lease_id"] == lease_id:
            cancel = row["reason"]
        return Outcome(
            job_id, lease_id, False, LEASE_LOST, row["state"] if row else "", None, cancel
        )

    async def job_complete_many(
        self, ctx: TxContext, completions: Sequence[Completion], *, tenants: Sequence[str] | None
    ) -> list[Outcome]:
        """Completes leases in one statement; the rest are reported, not applied.

        Artifacts carried by a completion are recorded in the same transaction, before the
        job succeeds; a completion whose artifact conflicts with one already recorded is
        refused (``artifact_conflict``) and leaves the job leased.
        """
        if not completions:
            return []
        now = ctx.now or self.db.clock.now()
        tenant_filter = _tenant_filter(tenants)
        refused: dict[uuid.UUID, str] = {}
        async with self._pipelined(ctx, now) as conn:
            artifacts = [a for c in completions for a in c.artifacts]
            if artifacts:
                results = await self._artifact_insert_many(
                    conn,
                    artifacts,
                    [JobState.LEASED.value, JobState.SUCCEEDED.value],
                    tenant_filter,
                    now,
                )
                for a, reason in zip(artifacts, results, strict=True):
                    if reason:
                        refused.setdefault(a.job_id, reason)
            todo = [c for c in completions if c.job_id not in refused]
            done_ids: dict[tuple[uuid.UUID, uuid.UUID], dict[str, Any]] = {}
            if todo:
                cur = await conn.execute(
                    query("job_complete_many"),
                    {
                        "ids": [c.job_id for c in todo],
                        "lease_ids": [c.lease_id for c in todo],
                        "results": [Jsonb(c.result) for c in todo],
                        "result_digests": [c.result_digest for c in todo],
                        "tenants": tenant_filter,
                        "now": now,
                    },
                )
                done = await cur.fetchall()
                done_ids = {(r["id"], r["lease_id"]): r for r in done}
                if done:
                    await settle(
                        conn, [r["id"] for r in done], [], [r["run_id"] for r in done], now
                    )
            rest = [c.job_id for c in completions if (c.job_id, c.lease_id) not in done_ids]
            status = await self._lease_status_many(conn, rest, tenant_filter)
        outcomes = []
        for c in completions:
            applied = done_ids.get((c.job_id, c.lease_id))
            if applied is not None:
                outcomes.append(
                    Outcome(
                        c.job_id,
                        c.lease_id,
                        True,
                        new_state="succeeded",
                        job_type=applied["job_type"],
                        run_s=applied["run_s"],
                    )
                )
                continue
            row = status.get(c.job_id)
            reason = refused.get(c.job_id, "")
            if reason == ARTIFACT_CONFLICT:
                outcomes.append(
                    Outcome(c.job_id, c.lease_id, False, reason, row["state"] if row else "")
                )
                continue
            repeat = (
                row is not None
                and row["state"] == JobState.SUCCEEDED
                and row["lease_id"] == c.lease_id
                and (row["result_digest"] or "") == c.result_digest
            )
            if repeat:
                outcomes.append(
                    Outcome(c.job_id, c.lease_id, True, "", JobState.SUCCEEDED.value, repeated=True)
                )
            else:
                outcomes.append(self._lost(c.job_id, c.lease_id, row))
        return outcomes

    async def job_fail_many(
        self, ctx: TxContext, failures: Sequence[Failure], *, tenants: Sequence[str] | None
    ) -> list[Outcome]:
        """Applies failures: retry with backoff while attempts and retryability allow, else
        dead (with a dead-letter entry); children of dead jobs are canceled."""
        if not failures:
            return []
        now = ctx.now or self.db.clock.now()
        tenant_filter = list(tenants) if tenants is not None else None
        by_key = {(f.job_id, f.lease_id): f for f in failures}
        async with self._pipelined(ctx, now) as conn:
            cur = await conn.execute(
                query("lease_lock_many"),
                {
                    "ids": [f.job_id for f in failures],
                    "lease_ids": [f.lease_id for f in failures],
                    "tenants": tenant_filter,
                },
            )
            rows = await cur.fetchall()
            decided = await self._job_fail_apply(
                conn,
                [(row, by_key[(row["id"], row["lease_id"])]) for row in rows],
                now,
            )
        held = {(row["id"], row["lease_id"]) for row in rows}
        outcomes = []
        for f in failures:
            state = decided.get(f.job_id) if (f.job_id, f.lease_id) in held else None
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

    async def lease_expire_batch(
        self, ctx: TxContext, *, limit: int = EXPIRE_BATCH
    ) -> list[Outcome]:
        """Watchdog pass: leases past expiry go back to ready with backoff, or dead when
        their attempts are used up. Returns what it did."""
        now = ctx.now or self.db.clock.now()
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(query("lease_lock_expired"), {"now": now, "limit": limit})
            rows = await cur.fetchall()
            decided = await self._job_fail_apply(
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
                retry_reason=Reason.LEASE_EXPIRED,
            )
        return [Outcome(r["id"], r["lease_id"], True, "", decided[r["id"]]) for r in rows]

    async def _job_fail_apply(
        self,
        conn: Conn,
        pairs: list[tuple[Row, Failure]],
        now: datetime,
        *,
        retry_reason: Reason = Reason.RETRY_BACKOFF,
        backoff: bool = True,
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
                "throttleds",
            )
        }
        for row, failure in pairs:
            policy = RetryPolicy(
                row["max_attempts"],
                row["initial_backoff_s"],
                row["max_backoff_s"],
                row["backoff_multiplier"],
            )
            # Attempts that ended in a 429 spend none of the budget and grow no backoff.
            spent = row["attempt"] - row["throttled_attempts"]
            throttled = backoff and failure.error_class == THROTTLED_CLASS and failure.retryable
            state = (
                JobState.READY if throttled else decide_failure(policy, spent, failure.retryable)
            )
            not_before: datetime | None
            if throttled:
                # Re-queued for when the host may be called again: the Retry-After (the
                # host's bucket is paused as long and spreads what it admits after).
                reason = Reason.THROTTLED
                wait = failure.retry_after_s
                not_before = now + timedelta(
                    seconds=THROTTLED_RETRY_AFTER_S if wait is None else wait
                )
            elif state == JobState.READY:
                reason = retry_reason
                delay = (
                    backoff_s(policy, spent, self.rng, failure.retry_after_s) if backoff else 0.0
                )
                not_before = now + timedelta(seconds=delay)
            else:
                reason = failure_reason(policy, spent, failure.retryable)
                not_before = None
            cols["ids"].append(row["id"])
            cols["states"].append(state.value)
            cols["reasons"].append(reason.value)
            cols["not_befores"].append(not_before)
            cols["error_classes"].append(failure.error_class)
            cols["error_messages"].append(failure.message[:4000])
            cols["retryables"].append(failure.retryable)
            cols["throttleds"].append(throttled)
        cur = await conn.execute(query("job_fail_many"), {**cols, "now": now})
        changed = await cur.fetchall()
        dead = [r["id"] for r in changed if r["state"] == JobState.DEAD]
        if dead:
            await conn.execute(query("dead_letter_insert_many"), {"ids": dead, "now": now})
        await settle(conn, [], dead, [r["run_id"] for r in changed], now)
        return {r["id"]: r["state"] for r in changed}
