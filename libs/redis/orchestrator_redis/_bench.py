"""Micro-benchmark of the acquire hot path (used by ``make bench``)."""

from __future__ import annotations

import random
import time

from orchestrator_redis._model import BucketKey
from orchestrator_redis._store import BucketStore

__all__ = ["BENCH_TENANT", "acquire_decisions_per_s"]

BENCH_TENANT = "bench"


async def acquire_decisions_per_s(
    store: BucketStore, n_keys: int, batch: int, seconds: float
) -> float:
    """Measures how many acquire decisions per second one caller gets.

    Sends batches of ``batch`` one-token requests over ``n_keys`` host buckets of tenant
    :data:`BENCH_TENANT`, one batch (one round trip) after another, for ``seconds`` of wall
    time, then deletes the tenant's keys.

    Args:
        store: The store to measure (its prefix decides where the keys go).
        n_keys: Distinct buckets to spread requests over (>= 1).
        batch: Requests per acquire call (>= 1).
        seconds: Wall-clock duration of the measurement (> 0).

    Returns:
        Decisions (granted or denied requests) per second.

    Raises:
        ValueError: an argument is out of range.
        RedisUnavailable: Redis cannot be reached.
    """
    if n_keys < 1 or batch < 1 or seconds <= 0:
        raise ValueError("n_keys and batch must be >= 1 and seconds > 0")
    keys = [BucketKey(BENCH_TENANT, f"host-{i}.example") for i in range(n_keys)]
    rng = random.Random(0)
    decisions = 0
    try:
        start = time.perf_counter()
        deadline = start + seconds
        while (clock := time.perf_counter()) < deadline:
            requests = [(keys[rng.randrange(n_keys)], 1) for _ in range(batch)]
            grants = await store.acquire(requests, now=time.time())
            decisions += len(grants)
        elapsed = clock - start
    finally:
        await store.purge_tenant(BENCH_TENANT)
    return decisions / elapsed if elapsed > 0 else 0.0
