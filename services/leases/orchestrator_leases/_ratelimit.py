"""Rate limiting on the leasing hot path (docs/architecture.md §2, §4): admission of claim
candidates and adaptive feedback from worker results.

Admission, batched: tokens are taken from Redis ahead of need and spent locally.
:meth:`LeaseLimiter.reserve` hands a claim the tokens this process holds per
``{tenant, source host}`` (``""``: jobs without a source, the tenant's default bucket); the
claim statement (``LeaseLedger.job_claim_admitted``) leases that many candidates per key
without asking Redis, so in the steady state a claim is one PostgreSQL round trip and no
Redis call. Candidates beyond the allowance go to :meth:`LeaseLimiter.admit`, which takes
their tokens in ONE batched :meth:`BucketStore.acquire` (one ``(key, count)`` item per key,
one Redis round trip): per key the first ``granted`` candidates (claim order) are leased,
the rest get ``not_before = now + retry_after``. Only for a roomy bucket (the last grant
left at least :data:`PREFETCH` tokens: the bucket does not bind) does it also take
:data:`PREFETCH` more and keep them for the next claims; a binding bucket is asked for
exactly what a claim needs, so tokens are spent when they are granted and leases follow
the bucket's pace (measured: prefetching from binding buckets bunched leases and raised
the upstream 429 share of the convergence test from ~1.5% to ~4%). Held tokens expire after
:data:`ALLOWANCE_TTL_S` (so an upstream pause, open circuit or operator override reached
through another process binds within that time) and are dropped at once when this process
sees its own throttle of the key. Every lease still spends one token the bucket granted,
so ``leases <= capacity + rate x elapsed`` holds. Paused sources, caps and blackouts are
handled in the claim's SQL.

Why the BucketStore directly and not the ratelimit service over gRPC: the leases process
talks to the same Redis with the same Lua scripts and key prefix
(``ORCH_RATELIMIT_KEY_PREFIX``), so both see the same buckets, and the hot path saves a
network hop, a serialization round and a dependency on another process being up (one Redis
round trip per claim instead of gRPC + Redis). The ratelimit service stays the operator and
Envoy API over those buckets (configure, override, report, list).

Redis failure policy (``ORCH_LEASES_RATELIMIT_FAILURE``): ``closed`` (default) leases
nothing that needs a token while Redis is unreachable — every candidate is deferred by
:data:`BACKEND_RETRY_S` and stays ready, so nothing is lost; ``open`` leases as if every
token were granted. The outage is logged once (and its end), and
``orch_leases_ratelimit_backend_up`` tracks it.

Feedback (:meth:`LeaseLimiter.observe`, fed by the completer after each flush, drained by
:meth:`LeaseLimiter.run` in the background so acks never wait for Redis): a failure of class
``http_429`` or ``http_5xx`` (``http_503`` accepted as an alias) throttles its bucket —
paused until ``retry_after`` (default 1 s) plus random jitter, refill rate cut — and writes
one ``orchestrator.throttles`` row per bucket per drain (origin ``upstream_429`` /
``upstream_503``; the table's trigger emits ``throttle.changed``). Once per bucket per
drain, ``record_results`` reports the completions (additive recovery) and the 5xx and
timeout failures (circuit breaker; a 429 only throttles, it never trips the circuit). The
key of a result comes from the job → key map filled at claim time, else from the ledger.
Results of jobs without a source (host ``""``) feed nothing back: their upstream is
unknown, so a 429 only delays that job (its retry's ``not_before`` honours the Retry-After)
instead of pausing every source-less job of the tenant.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from orchestrator_core import Clock, SystemClock
from orchestrator_leases import _metrics as metrics
from orchestrator_leases._actor import Actor
from orchestrator_pg import Failure, LeaseLedger, Row
from orchestrator_redis import (
    BucketKey,
    BucketStore,
    OrchestratorRedisError,
    RedisUnavailable,
    pause_jitter_s,
)

FailurePolicy = Literal["closed", "open"]

BACKEND_RETRY_S = 1.0
# Tokens acquired beyond a claim's need, per key, for the next claims (several claim batches,
# so most claims spend held tokens and skip Redis; a binding bucket grants only what it has).
PREFETCH = 500
# How long held tokens stay usable.
ALLOWANCE_TTL_S = 0.5
DEFAULT_RETRY_AFTER_S = 1.0
# A denied candidate waits at least this long, so a bucket answering "retry now" cannot make
# the dispatcher spin on the same rows.
MIN_DEFER_S = 0.05
# A key's booked slots (below) are forgotten when its rate moves by more than this share:
# slots spaced at a rate that has since grown would keep candidates away from tokens.
REBOOK_RATE_CHANGE = 0.1
# Slots are booked at most this far ahead (and at least BOOK_MIN_SLOTS slots): candidates
# beyond it come back at a random time within the next such span and are booked then, so a
# deep backlog is not parked for minutes at a rate that may grow meanwhile.
BOOK_AHEAD_S = 1.0
BOOK_MIN_SLOTS = 4
# Candidates booked per token: with two, a token still finds one waiting when the other was
# taken by another claim or came early, and demand stays above the rate, so the bucket binds
# and can probe upward (one per token: the grid's hosts with bursts of 10-50 ran slower).
BOOK_PER_TOKEN = 2
# A refused candidate whose token is at most this share of a token's time away comes back for
# that token (waiting at least MIN_NEAR_DEFER_S) instead of taking a booked slot.
NEAR_TOKEN_SHARE = 0.5
MIN_NEAR_DEFER_S = 0.001
# Slots are booked for buckets whose tokens come at least this far apart (<= 1,000/s).
MIN_SLOT_S = 0.001
MAX_BOOKED_KEYS = 10_000
MAX_REMEMBERED_JOBS = 200_000
# Successes alone are reported at most this often (they only feed recovery and the circuit
# breaker, so batching them keeps Redis and the event loop out of the completion path);
# throttling failures are applied at once.
SUCCESS_FEEDBACK_INTERVAL_S = 0.1
BACKEND_UNAVAILABLE = "backend_unavailable"

THROTTLE_ORIGINS = {
    "http_429": "upstream_429",
    "http_5xx": "upstream_503",
    "http_503": "upstream_503",
}
# Failures that count toward a host's circuit breaker: the upstream is failing. A 429 is not
# one — it is the upstream asking us to slow down, answered by the bucket (pause, lower
# refill); tripping the circuit on it and bursting again when it closes defeats convergence.
CIRCUIT_FAILURES = frozenset({"http_5xx", "http_503", "timeout"})

_log = logging.getLogger("orchestrator_leases.ratelimit")


def throttles(failure: Failure) -> bool:
    """Whether a failure asks the host to slow down: a 429 always (its Retry-After, else
    :data:`DEFAULT_RETRY_AFTER_S`); a 5xx only with a Retry-After (503 "come back later").
    A bare 5xx is the upstream failing, which the circuit breaker and the job's own backoff
    answer: cutting the rate on 1% of random 503s would starve a healthy host."""
    if failure.error_class == "http_429":
        return True
    return failure.error_class in THROTTLE_ORIGINS and failure.retry_after_s is not None


@dataclass(frozen=True)
class _JobKey:
    key: BucketKey
    source_id: uuid.UUID | None


@dataclass
class _Pending:
    successes: list[uuid.UUID] = field(default_factory=list)
    failures: list[tuple[Actor, Failure]] = field(default_factory=list)


class LeaseLimiter:
    """Token admission and adaptive feedback of one leases process.

    Args:
        store: the bucket store (same Redis and prefix as the ratelimit service).
        ledger: the lease ledger (key look-ups and throttle records).
        failure_policy: what admission does while Redis is unreachable.
        jitter_s: most random jitter added to an upstream retry-after.
        rng: jitter source.
        clock: time of the feedback calls (admission uses the claim's ``now``).
    """

    def __init__(
        self,
        store: BucketStore,
        ledger: LeaseLedger,
        *,
        failure_policy: FailurePolicy = "closed",
        jitter_s: float = 1.0,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self._clock: Clock = clock or SystemClock()
        self._ledger = ledger
        self.failure_policy = failure_policy
        self._jitter_s = jitter_s
        self._rng = rng or random.Random()
        self.backend_up = True
        metrics.RATELIMIT_BACKEND_UP.set(1)
        self._keys: dict[uuid.UUID, _JobKey] = {}
        # Tokens held per (tenant, host): (count, expiry in epoch seconds).
        self._held: dict[tuple[str, str], tuple[int, float]] = {}
        # Keys whose last grant left at least PREFETCH tokens (they do not bind).
        self._roomy: set[tuple[str, str]] = set()
        # Per (tenant, host): the last slot a deferred candidate was given and the rate that
        # spaced it. Each claim's deferred candidates continue after it, so candidates deferred
        # by consecutive claims come back at the bucket's pace instead of several to the same
        # token (the extra ones refused again, the slots between them left empty: measured on
        # the convergence grid, a 20/s host with a burst of 1 paced at 19/s delivered ~10/s).
        self._booked: dict[tuple[str, str], tuple[float, float]] = {}
        self._prune_booked_at = MAX_BOOKED_KEYS
        self._pending = _Pending()
        self._wake = asyncio.Event()

    # -- admission -------------------------------------------------------------------

    def _mark(self, up: bool) -> None:
        if up != self.backend_up:
            if up:
                _log.info("rate-limit backend (Redis) is reachable again; leasing resumes")
            else:
                _log.error(
                    "rate-limit backend (Redis) is unreachable; failure policy %s",
                    self.failure_policy,
                )
        self.backend_up = up
        metrics.RATELIMIT_BACKEND_UP.set(1 if up else 0)

    def reserve(self) -> dict[tuple[str, str], int]:
        """Takes the unexpired held tokens out of the pool for one claim (so two claims in
        flight never spend the same token); give the rest back with :meth:`release`."""
        now = self._clock.now().timestamp()
        held, self._held = self._held, {}
        reserved: dict[tuple[str, str], int] = {}
        for key, (count, expires) in held.items():
            if expires > now and count > 0:
                reserved[key] = count
                self._held[key] = (0, expires)
        return reserved

    def release(
        self, reserved: dict[tuple[str, str], int], spent: dict[tuple[str, str], int]
    ) -> None:
        """Returns the tokens of a reservation the claim did not spend."""
        for key, count in reserved.items():
            left = count - spent.get(key, 0)
            slot = self._held.get(key)
            if left > 0 and slot is not None:
                self._held[key] = (slot[0] + left, slot[1])

    def _hold(self, key: tuple[str, str], count: int, now: float) -> None:
        held, _ = self._held.get(key, (0, 0.0))
        self._held[key] = (held + count, now + ALLOWANCE_TTL_S)

    async def admit(
        self, candidates: Sequence[Row], now: datetime
    ) -> dict[uuid.UUID, tuple[datetime, str]]:
        """The candidates that may not go now, with when they can and why (the
        ``admit`` callback of ``LeaseLedger.job_claim_admitted``); one Redis round trip, which
        also fetches :data:`PREFETCH` tokens per key for the next claims."""
        by_key: dict[BucketKey, list[Row]] = {}
        for cand in candidates:
            by_key.setdefault(BucketKey(cand["tenant"], cand["host"]), []).append(cand)
        roomy = self._roomy
        requests = [
            (key, len(rows) + (PREFETCH if (key.tenant, key.host) in roomy else 0))
            for key, rows in by_key.items()
        ]
        denied: dict[uuid.UUID, tuple[datetime, str]] = {}
        try:
            grants = await self.store.acquire(requests, now=now.timestamp())
        except (RedisUnavailable, OrchestratorRedisError) as exc:
            if isinstance(exc, RedisUnavailable):
                self._mark(False)
            else:
                _log.warning("token acquire failed: %s", exc)
            if self.failure_policy == "open":
                return {}
            until = now + timedelta(seconds=BACKEND_RETRY_S)
            metrics.LEASES_DEFERRED.labels(BACKEND_UNAVAILABLE).inc(len(candidates))
            return {c["id"]: (until, BACKEND_UNAVAILABLE) for c in candidates}
        if not self.backend_up:
            self._mark(True)
        now_s = now.timestamp()
        for (key, rows), grant in zip(by_key.items(), grants, strict=True):
            pair = (key.tenant, key.host)
            if grant.remaining >= PREFETCH and not grant.deny_reason:
                roomy.add(pair)
            else:
                roomy.discard(pair)
            if grant.granted >= len(rows):
                if grant.granted > len(rows):
                    self._hold(pair, grant.granted - len(rows), now_s)
                continue
            reason = grant.deny_reason or "tokens"
            rest = rows[grant.granted :]
            metrics.LEASES_DEFERRED.labels(reason).inc(len(rest))
            times = self._come_back(pair, len(rest), grant.retry_after_s, grant.refill_per_s, now_s)
            for cand, back_s in zip(rest, times, strict=True):
                denied[cand["id"]] = (now + timedelta(seconds=back_s - now_s), reason)
        return denied

    def _come_back(
        self, pair: tuple[str, str], count: int, retry_after_s: float, rate: float, now_s: float
    ) -> list[float]:
        """When each of ``count`` candidates of one key that the bucket refused comes back
        (epoch seconds): :data:`BOOK_PER_TOKEN` per token, at the bucket's pace, so they
        neither return together (claims the bucket refuses again; after a pause, a burst at
        the upstream) nor leave tokens unused. Slots continue after those booked by earlier
        claims (see ``_booked``), at most :data:`BOOK_AHEAD_S` ahead."""
        step = 1.0 / rate if rate > 0 else 0.0
        if step < MIN_SLOT_S:
            # No rate, or one too fast for slots to mean anything (a bucket that does not
            # bind): wait at least MIN_DEFER_S, so the dispatcher does not spin on these rows.
            wait = max(MIN_DEFER_S, retry_after_s)
            return [now_s + wait + i * step for i in range(count)]
        times: list[float] = []
        next_token = now_s + retry_after_s
        if retry_after_s <= NEAR_TOKEN_SHARE * step:
            # The next token is nearly there: this candidate most likely came a little early
            # for the slot it was booked (a grant that runs late by a claim round moves every
            # later token with it), so it comes back for that token, not behind every slot
            # booked since — with a burst of 1 a token nobody takes at once is lost.
            times.append(now_s + max(MIN_NEAR_DEFER_S, retry_after_s))
            next_token += step
        # Booked slots follow token times (two to a token), so none needs MIN_DEFER_S: no spin.
        pace = step / BOOK_PER_TOKEN
        first = next_token
        booked, booked_rate = self._booked.get(pair, (0.0, 0.0))
        if booked >= first and abs(rate - booked_rate) <= REBOOK_RATE_CHANGE * rate:
            first = booked + pace
        horizon = next_token + max(BOOK_AHEAD_S, BOOK_MIN_SLOTS * step)
        slots = max(0, min(count - len(times), math.floor((horizon - first) / pace + 1e-9) + 1))
        times += [first + i * pace for i in range(slots)]
        if slots:
            if len(self._booked) >= self._prune_booked_at:
                # Keys whose slots have all passed mean nothing any more. The next pruning
                # waits until the map has doubled, so many live keys do not make every
                # booking rebuild it (amortized O(1) per booking).
                self._booked = {k: v for k, v in self._booked.items() if v[0] > now_s}
                self._prune_booked_at = max(MAX_BOOKED_KEYS, 2 * len(self._booked))
            self._booked[pair] = (times[-1], rate)
        span = horizon - now_s
        times += [horizon + self._rng.uniform(0.0, span) for _ in range(count - len(times))]
        return times

    def remember(self, rows: Sequence[Row]) -> None:
        """Keeps the bucket key of leased rows with a source host for the feedback of their
        results (source-less jobs feed nothing back)."""
        keys = self._keys
        for row in rows:
            if row["host"]:
                keys[row["id"]] = _JobKey(BucketKey(row["tenant"], row["host"]), row["source_id"])
        overflow = len(keys) - MAX_REMEMBERED_JOBS
        if overflow > 0:
            for job_id in list(keys)[:overflow]:
                del keys[job_id]

    # -- feedback --------------------------------------------------------------------

    def observe(
        self,
        actor: Actor,
        completed: Sequence[uuid.UUID],
        failures: Sequence[Failure],
    ) -> None:
        """Queues applied results (completions, failures) for the feedback loop."""
        if completed:
            self._pending.successes += completed
        for failure in failures:
            if throttles(failure) or failure.error_class in CIRCUIT_FAILURES:
                self._pending.failures.append((actor, failure))
            else:
                self._keys.pop(failure.job_id, None)
        if completed or failures:
            self._wake.set()

    async def run(self) -> None:
        """Applies queued feedback until cancelled (one drain at a time; what arrives
        meanwhile is batched into the next drain; successes alone wait up to
        :data:`SUCCESS_FEEDBACK_INTERVAL_S` to gather more)."""
        while True:
            await self._wake.wait()
            if not self._pending.failures:
                await asyncio.sleep(SUCCESS_FEEDBACK_INTERVAL_S)
            self._wake.clear()
            await self.drain()

    async def drain(self) -> None:
        """Applies everything queued so far (logs, never raises: feedback is best effort)."""
        pending, self._pending = self._pending, _Pending()
        try:
            await self._apply(pending)
        except Exception:
            _log.exception(
                "rate-limit feedback of %d results failed",
                len(pending.successes) + len(pending.failures),
            )

    async def _keys_of(
        self, successes: Sequence[uuid.UUID], failures: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, _JobKey]:
        # Successes of jobs not remembered (no source host, or leased before a restart) are
        # skipped: they only feed recovery. Throttling failures are looked up in the ledger.
        remembered = self._keys
        known = {i: remembered.pop(i) for i in successes if i in remembered}
        known |= {i: remembered.pop(i) for i in failures if i in remembered}
        missing = [i for i in failures if i not in known]
        if missing:
            for row in await self._ledger.job_bucket_hosts(missing):
                known[row["id"]] = _JobKey(BucketKey(row["tenant"], row["host"]), row["source_id"])
        return known

    async def _apply(self, pending: _Pending) -> None:
        keys = await self._keys_of(pending.successes, [f.job_id for _, f in pending.failures])
        successes: Counter[BucketKey] = Counter()
        for job_id in pending.successes:
            if job_id in keys and keys[job_id].key.host:
                successes[keys[job_id].key] += 1
        failures: Counter[BucketKey] = Counter()
        # Per bucket: the longest retry-after, the report that carried it, its actor.
        throttled: dict[BucketKey, tuple[float, Failure, _JobKey, Actor]] = {}
        for actor, failure in pending.failures:
            job_key = keys.get(failure.job_id)
            if job_key is None or not job_key.key.host:
                continue
            if failure.error_class in CIRCUIT_FAILURES:
                failures[job_key.key] += 1
            if not throttles(failure):
                continue
            retry = failure.retry_after_s or DEFAULT_RETRY_AFTER_S
            seen = throttled.get(job_key.key)
            if seen is None or retry > seen[0]:
                throttled[job_key.key] = (retry, failure, job_key, actor)
        now = self._clock.now()
        now_s = now.timestamp()
        records: dict[Actor, list[dict[str, Any]]] = {}
        try:
            # Successes first: a throttle learns from the goodput that preceded its 429.
            for key in successes.keys() | failures.keys():
                await self.store.record_results(
                    key, successes=successes[key], failures=failures[key], now=now_s
                )
            for key, (retry, failure, job_key, actor) in throttled.items():
                self._held.pop((key.tenant, key.host), None)  # held tokens predate the 429
                self._roomy.discard((key.tenant, key.host))
                origin = THROTTLE_ORIGINS[failure.error_class]
                status = "429" if origin == "upstream_429" else "5xx"
                reason = f"upstream {status} retry-after {retry:g}s (job {failure.job_id})"
                state = await self.store.throttle(
                    key,
                    retry_after_s=retry,
                    now=now_s,
                    reason=reason,
                    jitter_s=pause_jitter_s(retry, self._jitter_s, self._rng),
                )
                if not state.changed:
                    continue  # the host is already paused for this episode
                metrics.THROTTLES.labels(origin).inc()
                records.setdefault(actor, []).append(
                    {
                        "tenant": key.tenant,
                        "source_id": job_key.source_id,
                        "host": key.host,
                        "origin": origin,
                        "refill_per_second": state.refill_per_s,
                        "capacity": state.capacity,
                        "effective_refill_per_second": state.effective_refill_per_s,
                        "paused_until": (
                            None
                            if state.paused_until is None
                            else datetime.fromtimestamp(state.paused_until, UTC)
                        ),
                        "reason": reason,
                        "job_id": failure.job_id,
                    }
                )
        except RedisUnavailable as exc:
            self._mark(False)
            _log.warning("rate-limit feedback dropped, Redis is unreachable: %s", exc)
        for actor, rows in records.items():
            await self._ledger.throttle_insert_many(actor.ctx(), rows)
