"""Candidates the bucket refuses come back at the bucket's pace, two to a token, across
claims (``LeaseLimiter.admit`` against the real Lua buckets in Redis; no time passes but the
claim's ``now``).

Before, each claim spread its refused candidates from its own ``now``: candidates refused by
consecutive claims were told to come back at the same instants, the extra ones were refused
again and the instants between them stayed empty — with a burst of 1 a token nobody takes at
once is lost, and on the convergence grid a 20/s host paced at 19/s delivered ~10/s."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio

from orchestrator_core import FrozenClock
from orchestrator_leases._ratelimit import BOOK_AHEAD_S, BOOK_PER_TOKEN, LeaseLimiter
from orchestrator_redis import NON_BINDING, BucketConfig, BucketKey, BucketStore
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration

TENANT = "slots"


class _NoLedger:
    async def job_bucket_hosts(self, ids: Any) -> list[dict[str, Any]]:
        return []

    async def throttle_insert_many(self, ctx: Any, rows: Any) -> None:
        return None


@pytest.fixture
async def store() -> AsyncIterator[BucketStore]:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    bucket_store = BucketStore(
        client, prefix=f"orch:slots-test:{uuid.uuid4().hex}:", default=NON_BINDING
    )
    try:
        yield bucket_store
    finally:
        await bucket_store.purge_tenant(TENANT)
        await client.aclose()


def _candidates(host: str, n: int) -> list[dict[str, Any]]:
    return [
        {"id": uuid.uuid4(), "tenant": TENANT, "host": host, "source_id": None} for _ in range(n)
    ]


async def _strict_bucket(store: BucketStore, rate: float, at: datetime) -> str:
    host = f"h{uuid.uuid4().hex[:8]}.example.org"
    await store.configure(BucketKey(TENANT, host), BucketConfig(1, rate), now=at.timestamp())
    return host


@pytest.mark.parametrize("rate", [random.choice([10.0, 20.0]), 50.0])
async def test_consecutive_claims_book_distinct_slots_at_the_buckets_pace(
    store: BucketStore, rate: float
) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    host = await _strict_bucket(store, rate, t0)
    limiter = LeaseLimiter(store, _NoLedger(), clock=FrozenClock(t0), rng=random.Random(7))  # type: ignore[arg-type]
    step = 1.0 / rate
    per_claim = random.randint(2, 4)
    returns: list[float] = []
    # Claims a few milliseconds apart, as the dispatcher makes them while slots free up.
    for i in range(3):
        now = t0 + timedelta(milliseconds=2 * i)
        cands = _candidates(host, per_claim)
        denied = await limiter.admit(cands, now)
        refused = [c for c in cands if c["id"] in denied]
        assert len(refused) == per_claim - (1 if i == 0 else 0)  # the full bucket's one token
        returns += [(denied[c["id"]][0] - t0).total_seconds() for c in refused]
    # every candidate has its own slot, BOOK_PER_TOKEN per token from the next token on,
    # in order: none collide, none skip
    pace = step / BOOK_PER_TOKEN
    expected = [step + pace * k for k in range(len(returns))]
    assert sorted(returns) == pytest.approx(expected, abs=1e-6), (sorted(returns), step)


async def test_a_candidate_refused_just_before_its_token_comes_back_for_it(
    store: BucketStore,
) -> None:
    rate = 20.0
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    host = await _strict_bucket(store, rate, t0)
    limiter = LeaseLimiter(store, _NoLedger(), clock=FrozenClock(t0), rng=random.Random(3))  # type: ignore[arg-type]
    first = _candidates(host, 6)
    denied = await limiter.admit(first, t0)  # one leased, five booked 50 ms apart
    assert len(denied) == 5
    # A candidate arriving 3 ms before the next token (a grant ran late, the booked slots
    # drifted): it waits the 3 ms for that token, not behind the five booked slots.
    early = t0 + timedelta(seconds=1 / rate - 0.003)
    (late,) = _candidates(host, 1)
    again = await limiter.admit([late], early)
    wait = (again[late["id"]][0] - early).total_seconds()
    assert 0.002 < wait < 0.004, wait


async def test_slots_are_booked_a_bounded_time_ahead(store: BucketStore) -> None:
    rate = random.choice([2.0, 5.0])
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    host = await _strict_bucket(store, rate, t0)
    limiter = LeaseLimiter(store, _NoLedger(), clock=FrozenClock(t0), rng=random.Random(5))  # type: ignore[arg-type]
    cands = _candidates(host, 60)
    denied = await limiter.admit(cands, t0)
    times = sorted((denied[c["id"]][0] - t0).total_seconds() for c in cands if c["id"] in denied)
    horizon = 1 / rate + max(BOOK_AHEAD_S, 4 / rate)
    within = [t for t in times if t <= horizon + 1e-9]
    beyond = [t for t in times if t > horizon + 1e-9]
    # BOOK_PER_TOKEN per token up to the horizon, in order
    pace = 1 / rate / BOOK_PER_TOKEN
    assert within == pytest.approx([1 / rate + pace * k for k in range(len(within))], abs=1e-6)
    assert len(within) == round((horizon - 1 / rate) / pace) + 1
    # the rest come back within the next span, at scattered times (booked then), not parked
    # for a minute at today's rate nor all at one instant
    assert beyond
    assert all(t <= 2 * horizon for t in beyond)
    assert len(set(beyond)) == len(beyond)
