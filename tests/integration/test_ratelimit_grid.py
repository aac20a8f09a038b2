"""The adaptive buckets converge on upstream limits nobody configured (issue 15), checked on
a simulated clock: the real Lua buckets in Redis and the leases service's real admission and
feedback code (``LeaseLimiter``), against simulated upstream hosts whose rate, burst and seed
vary per run (``bench/ratelimit_grid.py``; ``make bench`` runs the full grid). Nothing here
depends on the machine's speed: every call gets the simulated ``now``."""

from __future__ import annotations

import random
import uuid

import pytest
import redis.asyncio

from bench.ratelimit_grid import WARMUP_S, HostSpec, describe, simulate
from orchestrator_redis import NON_BINDING, BucketStore
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.mark.parametrize("seed", [random.randrange(1_000_000) for _ in range(2)])
async def test_default_configuration_converges_on_unknown_limits(seed: int) -> None:
    rng = random.Random(seed)
    specs = [
        HostSpec(float(rng.randint(2, 30)), rng.randint(5, 50), rng.choice([0.0, 0.01]))
        for _ in range(2)
    ]
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    store = BucketStore(client, prefix=f"orch:gridtest:{uuid.uuid4().hex}:", default=NON_BINDING)
    try:
        results, throttle_rows = await simulate(store, specs, seed=seed)
    finally:
        await store.purge_tenant("grid")
        await client.aclose()
    print(f"\nseed {seed}\n{describe(results)}")
    for result in results:
        # every job done, and close to the upstream's pace once converged
        assert result.done_s == result.done_s, f"seed {seed}: {result.spec} did not finish"
        # The targets (<= 5 % 429s, <= 1.25x ideal) are bench figures, met today on
        # part of the grid only (docs/benchmarks.md); a test with random hosts must not fail
        # on the known misses (slow hosts, where one 429 in ~25 calls is already 4 %), so it
        # asserts convergence with a margin: a broken learner is far outside these bounds.
        # Slow hosts make a few dozen calls after the warm-up, where each probe past the
        # limit weighs: over seeds 0-139 the worst was 5 of 30 (17 %, a 2/s host); a broken
        # learner answers most calls 429 (84-95 % in the report), far outside this.
        late = [code for t, code in result.answers if t >= WARMUP_S]
        late_429 = sum(code == 429 for code in late)
        assert late_429 <= max(2, 0.25 * len(late)), (seed, result.spec, late_429, len(late))
        assert result.slowdown() <= 1.5, (seed, result.spec)
        # the upstream said 429 at first (nothing was configured) and each episode was
        # recorded once, not once per throttled job
        answered_429 = sum(code == 429 for _, code in result.answers)
        assert answered_429 > 0, (seed, result.spec)
    assert 0 < throttle_rows < sum(code == 429 for r in results for _, code in r.answers)
