"""Rate-limit convergence grid: the adaptive buckets against many upstreams nobody described,
on a simulated clock (issue 15 item 2).

What is real and what is simulated:

* **Real**: the bucket scripts in Redis (``lua/buckets.lua`` through ``BucketStore``, a fresh
  key prefix) and the leases service's admission and feedback code (``LeaseLimiter``:
  held tokens, batched acquire, spreading of deferred jobs, the once-per-episode throttle,
  goodput and probing reports). Every call gets the simulated ``now``; nothing sleeps.
* **Simulated**: the ledger (a ready queue per host: a job deferred by the bucket or
  throttled by the upstream comes back at its ``not_before``; a 429 costs no attempt), the
  workers (50 slots per host; claim rounds every 2 ms at most; the upstream call 1.5-2.5 ms
  after the lease, its answer 10-50 ms later), the completer (failures fed back 5 ms after
  they arrive, successes every 100 ms) and the upstream: per host a token bucket of rate R
  and burst B answering 429 + ``Retry-After: max(1, ceil(wait))`` beyond it, plus, on the
  noisy rows, a 503 without Retry-After on 1% of the calls.

Every host starts from the DEFAULT configuration (``ORCH_RATELIMIT_DEFAULT_BUCKET=none``:
nothing binds until an upstream answers 429) with R x 30 s of work queued, so the ideal
burn-down is 30 s for every host. Per host: the 429 share of the calls after the first 10 s,
the burn-down time against the ideal, and the goodput from 10 s to the end against R.
Targets (issue 15): 429 share <= 5 %, time <= 1.25 x ideal, goodput >= 90 % of R.

The real-services run with a smaller grid is ``bench/ratelimit_convergence.py``.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio

from orchestrator_core import FrozenClock
from orchestrator_leases._actor import Actor
from orchestrator_leases._ratelimit import LeaseLimiter
from orchestrator_pg import Failure
from orchestrator_redis import NON_BINDING, BucketStore

RATES = (1.0, 5.0, 20.0, 50.0, 100.0, 200.0)
BURSTS = (1, 10, 50)
ERROR_RATES = (0.0, 0.01)
WORK_S = 30.0  # R x WORK_S jobs per host: the ideal burn-down is WORK_S for every host
WARMUP_S = 10.0
SLOTS = 50
DISPATCH_TICK_S = 0.002  # claim rounds at most this often
CALL_DELAY_S = (0.0015, 0.0025)  # lease -> upstream call (the Work stream's delivery)
ANSWER_DELAY_S = (0.010, 0.050)  # upstream call -> its answer reported
TIMEOUT_X = 4.0  # a host not done after this many ideals stops the run (reported as such)
TARGET_SHARE = 0.05
TARGET_SLOWDOWN = 1.25
TARGET_GOODPUT = 0.90
TENANT = "grid"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACTOR = Actor(TENANT, "grid-worker", ("orch:work",), (TENANT,))


@dataclass(frozen=True)
class HostSpec:
    """One simulated upstream host: its true rate, burst and share of random 503s."""

    rate: float
    burst: int
    error_rate: float

    @property
    def name(self) -> str:
        noise = f"-e{self.error_rate * 100:g}" if self.error_rate else ""
        return f"r{self.rate:g}-b{self.burst}{noise}"

    @property
    def jobs(self) -> int:
        return max(1, round(self.rate * WORK_S))


def grid(
    rates: Sequence[float] = RATES,
    bursts: Sequence[int] = BURSTS,
    error_rates: Sequence[float] = ERROR_RATES,
) -> list[HostSpec]:
    return [HostSpec(r, b, e) for r, b, e in itertools.product(rates, bursts, error_rates)]


@dataclass
class _Upstream:
    spec: HostSpec
    tokens: float
    updated: float = 0.0

    def answer(self, now: float, rng: random.Random) -> tuple[int, float]:
        """(status, retry_after_s) of one call at ``now``."""
        if self.spec.error_rate and rng.random() < self.spec.error_rate:
            return 503, 0.0
        rate = self.spec.rate
        self.tokens = min(self.spec.burst, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 200, 0.0
        return 429, float(max(1, math.ceil((1 - self.tokens) / rate)))


@dataclass
class HostResult:
    """What one host saw: every upstream answer ``(t, status)`` and when its last job ended."""

    spec: HostSpec
    answers: list[tuple[float, int]] = field(default_factory=list)
    done_s: float = math.nan

    def share_429_after_warmup(self) -> float:
        late = [code for t, code in self.answers if t >= WARMUP_S]
        return sum(code == 429 for code in late) / max(1, len(late))

    def slowdown(self) -> float:
        return self.done_s / (self.spec.jobs / self.spec.rate)

    def goodput_share(self) -> float:
        """Successes per second from WARMUP_S to the last success, against R (the
        converged throughput; hosts done before WARMUP_S count their whole run)."""
        ok = [t for t, code in self.answers if code == 200]
        if not ok:
            return 0.0
        start = WARMUP_S if ok[-1] > WARMUP_S + 1 else 0.0
        late = [t for t in ok if t >= start]
        return len(late) / max(ok[-1] - start, 1e-9) / self.spec.rate

    def within_targets(self) -> bool:
        return (
            self.share_429_after_warmup() <= TARGET_SHARE
            and self.slowdown() <= TARGET_SLOWDOWN
            and self.goodput_share() >= TARGET_GOODPUT
        )


class _Ledger:
    """The two ledger calls the limiter makes: every key is remembered at lease time, and
    throttle rows are counted, not stored."""

    def __init__(self) -> None:
        self.throttle_rows = 0

    async def job_bucket_hosts(self, ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
        return []

    async def throttle_insert_many(self, ctx: Any, rows: Sequence[dict[str, Any]]) -> None:
        self.throttle_rows += len(rows)


@dataclass
class _Host:
    spec: HostSpec
    upstream: _Upstream
    result: HostResult
    ready: list[tuple[float, int, uuid.UUID]] = field(default_factory=list)
    busy: int = 0
    left: int = 0


async def simulate(
    store: BucketStore, specs: Sequence[HostSpec], *, seed: int
) -> tuple[list[HostResult], int]:
    """Runs every host of ``specs`` at once on one simulated clock (one tenant, one bucket
    per host, a fresh key prefix in ``store``). Returns the results and the throttle rows
    the limiter wrote."""
    rng = random.Random(seed)
    clock = FrozenClock(T0)
    ledger = _Ledger()
    limiter = LeaseLimiter(
        store,
        ledger,
        clock=clock,
        rng=random.Random(seed + 1),  # type: ignore[arg-type]
    )
    hosts: dict[str, _Host] = {}
    seq = itertools.count()
    for spec in specs:
        host = _Host(spec, _Upstream(spec, float(spec.burst)), HostResult(spec), left=spec.jobs)
        for _ in range(spec.jobs):
            host.ready.append((0.0, next(seq), uuid.uuid4()))
        heapq.heapify(host.ready)
        hosts[f"{spec.name}.example.org"] = host
    jobs: dict[uuid.UUID, str] = {job: name for name, h in hosts.items() for _, _, job in h.ready}
    # Events: (time, order, kind, payload). Kinds: dispatch, call, answer, drain.
    events: list[tuple[float, int, str, Any]] = [(0.0, next(seq), "dispatch", None)]
    dispatch_at: set[int] = {0}
    drain_at: set[int] = set()
    deadline = TIMEOUT_X * WORK_S
    attempts: dict[uuid.UUID, int] = {}

    def schedule_dispatch(t: float) -> None:
        tick = math.ceil(t / DISPATCH_TICK_S)  # the dispatcher claims in rounds, not per job
        if tick not in dispatch_at:
            dispatch_at.add(tick)
            heapq.heappush(events, (tick * DISPATCH_TICK_S, next(seq), "dispatch", None))

    def schedule_drain(t: float) -> None:
        tick = math.ceil(t * 1000)
        if tick not in drain_at:
            drain_at.add(tick)
            heapq.heappush(events, (tick / 1000, next(seq), "drain", None))

    while events and any(h.left for h in hosts.values()):
        now, _, kind, payload = heapq.heappop(events)
        if now > deadline:
            break
        clock.set(T0 + timedelta(seconds=now))
        at = T0 + timedelta(seconds=now)
        if kind == "dispatch":
            dispatch_at.discard(math.ceil(now / DISPATCH_TICK_S - 1e-6))
            await _dispatch(hosts, limiter, now, at, rng, events, seq, schedule_dispatch)
        elif kind == "call":
            name, job = payload
            host = hosts[name]
            status, retry_after = host.upstream.answer(now, rng)
            host.result.answers.append((now, status))
            heapq.heappush(
                events,
                (
                    now + rng.uniform(*ANSWER_DELAY_S),
                    next(seq),
                    "answer",
                    (name, job, status, retry_after),
                ),
            )
        elif kind == "answer":
            name, job, status, retry_after = payload
            host = hosts[name]
            host.busy -= 1
            if status == 200:
                host.left -= 1
                if host.left == 0:
                    host.result.done_s = now
                limiter.observe(ACTOR, [job], [])
                schedule_drain(math.floor(now * 10 + 1) / 10)  # successes: every 100 ms
            else:
                if status == 429:
                    failure = Failure(job, uuid.uuid4(), "http_429", "", True, retry_after)
                    not_before = now + retry_after  # no attempt spent, no backoff growth
                else:
                    failure = Failure(job, uuid.uuid4(), "http_5xx", "", True, None)
                    attempts[job] = attempts.get(job, 0) + 1
                    not_before = now + rng.uniform(0, 0.1 * 2 ** (attempts[job] - 1))
                limiter.observe(ACTOR, [], [failure])
                heapq.heappush(host.ready, (not_before, next(seq), job))
                schedule_dispatch(not_before)
                schedule_drain(now + 0.005)
            schedule_dispatch(now)
        elif kind == "drain":
            drain_at.discard(math.ceil(now * 1000))
            await limiter.drain()
    del jobs
    return [h.result for h in hosts.values()], ledger.throttle_rows


async def _dispatch(
    hosts: dict[str, _Host],
    limiter: LeaseLimiter,
    now: float,
    at: datetime,
    rng: random.Random,
    events: list[tuple[float, int, str, Any]],
    seq: itertools.count[int],
    schedule_dispatch: Any,
) -> None:
    """One claim round over every host, as the dispatcher and ``job_claim_admitted`` do it: held
    tokens first, the rest through one batched ``admit``; admitted jobs are leased, the
    others get the ``not_before`` the limiter chose."""
    candidates: list[dict[str, Any]] = []
    for name, host in hosts.items():
        free = SLOTS - host.busy
        while free > 0 and host.ready and host.ready[0][0] <= now + 1e-9:
            _, _, job = heapq.heappop(host.ready)
            candidates.append({"id": job, "tenant": TENANT, "host": name, "source_id": None})
            free -= 1
    if not candidates:
        return
    reserved = limiter.reserve()
    spent: dict[tuple[str, str], int] = {}
    rest = []
    for cand in candidates:
        pair = (TENANT, cand["host"])
        if spent.get(pair, 0) < reserved.get(pair, 0):
            spent[pair] = spent.get(pair, 0) + 1
            _lease(hosts, limiter, cand, now, rng, events, seq)
        else:
            rest.append(cand)
    denied = await limiter.admit(rest, at) if rest else {}
    limiter.release(reserved, spent)
    for cand in rest:
        if cand["id"] in denied:
            until, _ = denied[cand["id"]]
            t = (until - T0).total_seconds()
            heapq.heappush(hosts[cand["host"]].ready, (t, next(seq), cand["id"]))
            schedule_dispatch(t)
        else:
            _lease(hosts, limiter, cand, now, rng, events, seq)


def _lease(
    hosts: dict[str, _Host],
    limiter: LeaseLimiter,
    cand: dict[str, Any],
    now: float,
    rng: random.Random,
    events: list[tuple[float, int, str, Any]],
    seq: itertools.count[int],
) -> None:
    hosts[cand["host"]].busy += 1
    limiter.remember([cand])
    heapq.heappush(
        events, (now + rng.uniform(*CALL_DELAY_S), next(seq), "call", (cand["host"], cand["id"]))
    )


async def run_grid(
    redis_url: str, specs: Sequence[HostSpec] | None = None, *, seed: int = 1
) -> list[HostResult]:
    """Runs the grid once from the default configuration; purges its keys afterwards."""
    client = redis.asyncio.Redis.from_url(redis_url)
    store = BucketStore(client, prefix=f"orch:rlgrid:{uuid.uuid4().hex}:", default=NON_BINDING)
    try:
        results, _ = await simulate(store, specs or grid(), seed=seed)
    finally:
        await store.purge_tenant(TENANT)
        await client.aclose()
    return results


def describe(results: Sequence[HostResult]) -> str:
    lines = [
        f"{'host':<14} {'R/s':>6} {'burst':>5} {'503':>4} {'jobs':>6} {'429>10s':>8}"
        f" {'time/ideal':>10} {'goodput/R':>9}  ok"
    ]
    for r in results:
        s = r.spec
        lines.append(
            f"{s.name:<14} {s.rate:>6g} {s.burst:>5} {s.error_rate:>4.0%} {s.jobs:>6}"
            f" {r.share_429_after_warmup():>8.1%} {r.slowdown():>10.2f}"
            f" {r.goodput_share():>9.1%}  {'yes' if r.within_targets() else 'NO'}"
        )
    return "\n".join(lines)


def figures_of(results: Sequence[HostResult]) -> dict[str, tuple[float, str]]:
    """``{name: (value, unit)}``: per host and the worst of the grid."""
    figures: dict[str, tuple[float, str]] = {}
    for r in results:
        base = f"ratelimit_grid_{r.spec.name.replace('-', '_').replace('.', '_')}"
        figures[f"{base}_429_share_pct"] = (100 * r.share_429_after_warmup(), "%")
        figures[f"{base}_slowdown_x"] = (r.slowdown(), "x")
        figures[f"{base}_goodput_pct"] = (100 * r.goodput_share(), "%")
    figures["ratelimit_grid_worst_429_share_pct"] = (
        max(100 * r.share_429_after_warmup() for r in results),
        "%",
    )
    figures["ratelimit_grid_worst_slowdown_x"] = (max(r.slowdown() for r in results), "x")
    figures["ratelimit_grid_worst_goodput_pct"] = (
        min(100 * r.goodput_share() for r in results),
        "%",
    )
    figures["ratelimit_grid_hosts"] = (len(results), "hosts")
    figures["ratelimit_grid_hosts_within_targets"] = (
        sum(r.within_targets() for r in results),
        "hosts",
    )
    return figures
