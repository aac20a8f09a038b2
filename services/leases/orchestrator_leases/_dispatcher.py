"""Dispatcher: leases jobs for every waiting Work session of this process.

Sessions with the same actor and job types form a group, and one claim statement serves
the whole group: the batch's slots are dealt round-robin over the sessions' free slots
(``worker_ids[k]`` is the worker of slot ``k``), so 50 sessions waiting for the same kind of
work cost one ``FOR UPDATE SKIP LOCKED`` statement per ``ORCH_CLAIM_BATCH`` jobs, not 50.
Never more than the free slots are claimed: slots are reserved while a claim is in flight.

Wake-ups (STYLE rule 11): a group claims when it has free slots and may have work. "May
have work" is set by a NOTIFY on ``orch_jobs_ready`` naming one of its job types, by a claim
that came back full, or by the jittered fallback poll (``POLL_MIN_S``..``POLL_MAX_S``, for
jobs whose ``not_before`` passes without a NOTIFY); a claim that comes back short clears it.
A generation counter keeps a NOTIFY that arrives during a claim from being lost.

The claim is ``LeaseLedger.job_claim_admitted``: caps (quotas, per-source ``max_active``),
paused sources and quotas and blackouts always apply; with rate limiting
(``ORCH_LEASES_RATELIMIT=on``, :mod:`orchestrator_leases._ratelimit`) the limiter's held
tokens and batched admission too. Candidates that may not go now are deferred
(``not_before`` moved), not leased. A claim whose every candidate was deferred does not
count as "may have more": the group waits for a NOTIFY, its fallback poll, or the earliest
deferred ``not_before`` / next hourly quota token, whichever comes first, so held-back jobs
are claimed when due without a busy loop. A claim that found a ``max_active`` cap full
makes the group claim again when any of its leases ends.

Fairness across tenants is in the claim itself (round-robin over tenants); the per-tenant
limit adapts to how many tenants the previous claim found, so a batch does not lock many
more rows than it can use.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from orchestrator_leases import _convert as convert
from orchestrator_leases import _metrics as metrics
from orchestrator_leases._actor import Actor
from orchestrator_leases._ratelimit import LeaseLimiter
from orchestrator_leases._session import WorkSession
from orchestrator_pg import LeaseLedger, Passes, Row

POLL_MIN_S = 1.0
POLL_MAX_S = 2.0
CLAIM_ERROR_BACKOFF_S = 1.0
MAX_PENDING_WAKEUPS = 256  # deferral due times remembered per group
MAX_CLAIMS_IN_FLIGHT = 2

_log = logging.getLogger("orchestrator_leases.dispatcher")


class ClaimOutcome(NamedTuple):
    """One claim: the leased rows, how many candidates were deferred, the seconds until
    something held back may go (a deferral or an hourly quota token; None: nothing), and
    whether a ``max_active`` cap was full (a lease ending may make room)."""

    rows: list[Row]
    deferred: int
    wake_in: float | None
    cap_full: bool


@dataclass(eq=False)
class _Group:
    actor: Actor
    job_types: tuple[str, ...]
    sessions: list[WorkSession] = field(default_factory=list)
    maybe_more: bool = True
    generation: int = 0
    claiming: int = 0
    next_poll: float = 0.0
    tenants_seen: int = 1
    # loop times at which deferred jobs come due (a small heap): a claim that finds nothing
    # must not forget deferrals made by earlier claims, or due jobs wait for the fallback poll
    due_at: list[float] = field(default_factory=list)
    # the last claim found a max_active cap full: freed slots (a lease ended) claim again
    cap_full: bool = False


class Dispatcher:
    """Claims for waiting sessions and pushes the assignments.

    Args:
        ledger: the lease ledger.
        lease_ttl_s: lease length.
        claim_batch: most jobs per claim statement.
        rng: jitter source.
        limiter: rate-limit admission and feedback (None: no rate limiting).
    """

    def __init__(
        self,
        ledger: LeaseLedger,
        *,
        lease_ttl_s: float,
        claim_batch: int,
        rng: random.Random | None = None,
        limiter: LeaseLimiter | None = None,
    ) -> None:
        self._ledger = ledger
        self._limiter = limiter
        self._ttl_s = lease_ttl_s
        self._batch = claim_batch
        self._rng = rng or random.Random()
        self._groups: dict[tuple[Actor, tuple[str, ...]], _Group] = {}
        self._wake = asyncio.Event()
        self._claims: set[asyncio.Task[None]] = set()
        # Weighted fair share across claims, per {tenants, job types} scope (the tenants'
        # passes, orchestrator_pg.Passes): claims that stop once their batch is full still
        # reach every tenant in turn, in proportion to its weight. Bounded by the distinct
        # worker scopes seen.
        self._passes: dict[tuple[tuple[str, ...] | None, tuple[str, ...]], Passes] = {}

    def register(self, session: WorkSession) -> None:
        key = (session.actor, session.job_types)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(session.actor, session.job_types)
        group.sessions.append(session)
        group.maybe_more = True
        session.group = group
        self._wake.set()

    def unregister(self, session: WorkSession) -> None:
        group: _Group | None = session.group
        if group is None or session not in group.sessions:
            return
        group.sessions.remove(session)
        if not group.sessions:
            self._groups.pop((group.actor, group.job_types), None)

    def drain_sessions(self, reason: str) -> None:
        """Tells every Work session to drain (the process is stopping): no more assignments;
        the workers finish what they hold, deliver the results and reconnect elsewhere."""
        for group in list(self._groups.values()):
            for session in list(group.sessions):
                session.drain_from_server(reason)

    def poke(self, session: WorkSession) -> None:
        """Slots were freed."""
        group: _Group | None = session.group
        if group is not None and group.maybe_more:
            self._wake.set()

    def leases_ended(self) -> None:
        """Leases ended and committed: groups whose last claim found a ``max_active`` cap
        full claim again (there may be room now)."""
        for group in self._groups.values():
            if group.cap_full:
                group.generation += 1  # a claim in flight may predate the commit
                group.maybe_more = True
                self._wake.set()

    def on_ready(self, job_types: frozenset[str] | None) -> None:
        """A NOTIFY said jobs of these types (None: of any type) became ready."""
        for group in self._groups.values():
            if job_types is None or not job_types.isdisjoint(group.job_types):
                group.generation += 1
                group.maybe_more = True
                self._wake.set()

    async def run(self) -> None:
        """Dispatches until cancelled."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._wake.clear()
                now = loop.time()
                timeout: float | None = None
                for group in list(self._groups.values()):
                    if group.claiming >= MAX_CLAIMS_IN_FLIGHT:
                        continue
                    hungry = [s for s in group.sessions if s.free_slots > 0]
                    if not hungry:
                        continue
                    if not group.maybe_more and now >= group.next_poll:
                        group.maybe_more = True
                    if group.maybe_more:
                        self._start_claim(group, hungry)
                    else:
                        wait = group.next_poll - now
                        timeout = wait if timeout is None else min(timeout, wait)
                if timeout is None:
                    await self._wake.wait()
                else:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout):
                            await self._wake.wait()
        finally:
            for task in self._claims:
                task.cancel()

    def _start_claim(self, group: _Group, hungry: list[WorkSession]) -> None:
        # Deal slots round-robin so a short batch is spread evenly over the sessions.
        slots: list[WorkSession] = []
        free = {s: s.free_slots for s in hungry}
        while len(slots) < self._batch and free:
            for session in list(free):
                slots.append(session)
                free[session] -= 1
                if free[session] == 0:
                    del free[session]
                if len(slots) == self._batch:
                    break
        for session in slots:
            session.reserved += 1
        group.claiming += 1
        task = asyncio.create_task(self._claim(group, slots, group.generation))
        self._claims.add(task)
        task.add_done_callback(self._claims.discard)

    async def _claim(self, group: _Group, slots: list[WorkSession], generation: int) -> None:
        loop = asyncio.get_running_loop()
        per_tenant = math.ceil(len(slots) / max(1, group.tenants_seen))
        rows: list[Row] = []
        deferred = 0
        wake_in: float | None = None
        try:
            rows, deferred, wake_in, group.cap_full = await self.claim(
                group.actor, [s.worker_id for s in slots], group.job_types, per_tenant
            )
        except Exception:
            _log.exception("claim for %s failed", ",".join(group.job_types))
            group.maybe_more = False
            group.next_poll = loop.time() + CLAIM_ERROR_BACKOFF_S
            return
        finally:
            for session in slots:
                session.reserved -= 1
            group.claiming -= 1
            self._wake.set()
        self._deliver(slots, rows)
        tenants = Counter(r["tenant"] for r in rows)
        group.tenants_seen = max(1, len(tenants))
        saturated = any(n >= per_tenant for n in tenants.values())
        # Deferred candidates left the claimable set, so they count as taken; but a claim
        # that only deferred must not be repeated at once (no busy loop on a closed bucket).
        taken = len(rows) + deferred
        if group.generation == generation and (
            (taken < len(slots) and not saturated) or (deferred and not rows)
        ):
            group.maybe_more = False
        now = loop.time()
        if wake_in is not None:
            heapq.heappush(group.due_at, now + wake_in)
            if len(group.due_at) > MAX_PENDING_WAKEUPS:
                group.due_at = heapq.nsmallest(MAX_PENDING_WAKEUPS, group.due_at)
        while group.due_at and group.due_at[0] <= now:
            heapq.heappop(group.due_at)
        next_poll = now + self._rng.uniform(POLL_MIN_S, POLL_MAX_S)
        if group.due_at:
            next_poll = min(next_poll, group.due_at[0])
        group.next_poll = next_poll

    async def claim(
        self,
        actor: Actor,
        worker_ids: Sequence[str],
        job_types: Sequence[str],
        per_tenant: int | None = None,
    ) -> ClaimOutcome:
        """One claim (rate limited when a limiter is set)."""
        limiter = self._limiter
        reserved = limiter.reserve() if limiter is not None else {}
        spent: dict[tuple[str, str], int] = {}
        scope = (None if actor.tenants is None else tuple(actor.tenants), tuple(job_types))
        passes = self._passes.setdefault(scope, Passes())
        try:
            result = await self._ledger.job_claim_admitted(
                actor.ctx(),
                worker_ids=worker_ids,
                job_types=job_types,
                tenants=actor.tenants,
                admit=limiter.admit if limiter is not None else None,
                allowance=reserved,
                lease_ttl_s=self._ttl_s,
                per_tenant=per_tenant,
                passes=passes,
            )
            spent = result.spent
        finally:
            if limiter is not None:
                limiter.release(reserved, spent)
        if limiter is not None:
            limiter.remember(result.rows)
        wake_at: datetime | None = result.wake_at
        wake_in = None if wake_at is None else max(0.0, (wake_at - result.now).total_seconds())
        return ClaimOutcome(result.rows, len(result.deferred), wake_in, result.cap_full)

    def _deliver(self, slots: Sequence[WorkSession], rows: list[Row]) -> None:
        if not rows:
            return
        by_session: dict[WorkSession, list[Row]] = {}
        for row in rows:
            by_session.setdefault(slots[row["slot"] - 1], []).append(row)
        orphans: list[Row] = []
        for session, mine in by_session.items():
            if not session.deliver(mine, convert.assignment):
                orphans += mine
        if orphans:
            # The session ended or began draining while its claim was in flight: give the
            # jobs back now.
            task = asyncio.create_task(self._release(slots[0].actor, orphans))
            self._claims.add(task)
            task.add_done_callback(self._claims.discard)
        record_claimed(rows, self._ttl_s)

    async def _release(self, actor: Actor, rows: list[Row]) -> None:
        try:
            await self._ledger.lease_release_many(
                actor.ctx(),
                [(r["id"], r["lease_id"]) for r in rows],
                message="the Work stream ended or was draining before its assignment was sent",
            )
        except Exception:
            _log.exception("releasing %d orphaned leases failed", len(rows))


def record_claimed(rows: Sequence[Row], lease_ttl_s: float) -> None:
    """Counts leased jobs by type and observes their start latency."""
    for job_type, n in Counter(r["job_type"] for r in rows).items():
        metrics.LEASES_CLAIMED.labels(job_type).inc(n)
    latency = metrics.JOB_START_LATENCY_SECONDS
    for row in rows:
        waited = (row["lease_expires_at"] - row["ready_at"]).total_seconds() - lease_ttl_s
        latency.labels(row["job_type"]).observe(max(0.0, waited))
