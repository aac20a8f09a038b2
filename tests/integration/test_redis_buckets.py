"""Integration tests of orchestrator_redis against a real Redis (ORCH_TEST_REDIS_URL, default
redis://127.0.0.1:6379/0). Each test works under its own random key prefix and deletes its
keys at the end; time is moved by passing ``now``, never by sleeping."""

from __future__ import annotations

import math
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from orchestrator_redis import (
    NON_BINDING,
    AdaptivePolicy,
    BucketConfig,
    BucketKey,
    BucketState,
    BucketStore,
    CircuitPolicy,
    RedisUnavailable,
    acquire_decisions_per_s,
    redis_keys,
)
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0
KEY = BucketKey("acme", "api.example.com")


async def _delete_prefix(client: redis.asyncio.Redis, prefix: str) -> None:
    names = [name async for name in client.scan_iter(match=f"{prefix}*", count=500)]
    if names:
        await client.delete(*names)


@pytest.fixture
async def client() -> AsyncIterator[redis.asyncio.Redis]:
    conn = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await conn.ping()
    except redis.exceptions.ConnectionError as exc:
        await conn.aclose()
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    yield conn
    await conn.aclose()


@pytest.fixture
async def prefix(client: redis.asyncio.Redis) -> AsyncIterator[str]:
    value = f"test:{uuid.uuid4().hex[:12]}:"
    yield value
    await _delete_prefix(client, value)


@pytest.fixture
def store(client: redis.asyncio.Redis, prefix: str) -> BucketStore:
    return BucketStore(
        client,
        prefix=prefix,
        default=BucketConfig(10, 5),
        circuit=CircuitPolicy(failure_ratio=0.5, min_volume=4, window_s=30, open_s=15),
        adaptive=AdaptivePolicy(decrease_factor=0.5, min_refill_per_s=0.5, probe_per_s=0.1),
    )


async def acquire_one(store: BucketStore, n: int, now: float, key: BucketKey = KEY):
    (grant,) = await store.acquire([(key, n)], now=now)
    return grant


# -- token bucket -------------------------------------------------------------------------


async def test_new_bucket_starts_full_and_grants_partially(store: BucketStore):
    first = await acquire_one(store, 4, T0)
    assert (first.granted, first.remaining, first.deny_reason, first.retry_after_s) == (
        4,
        6.0,
        "",
        0.0,
    )
    partial = await acquire_one(store, 8, T0)
    assert partial.granted == 6
    assert partial.deny_reason == "tokens"
    assert partial.remaining == 0.0
    assert partial.retry_after_s == pytest.approx(2 / 5)  # 2 more tokens at 5/s
    none = await acquire_one(store, 3, T0)
    assert (none.granted, none.deny_reason) == (0, "tokens")
    assert none.retry_after_s == pytest.approx(3 / 5)


async def test_retry_after_for_more_than_capacity_is_a_full_bucket(store: BucketStore):
    await acquire_one(store, 10, T0)
    grant = await acquire_one(store, 25, T0)
    assert grant.granted == 0
    assert grant.retry_after_s == pytest.approx(10 / 5)


async def test_refill_over_moved_time_and_capacity_cap(store: BucketStore):
    await acquire_one(store, 10, T0)
    assert (await store.state(KEY, now=T0 + 0.5)).tokens == pytest.approx(2.5)
    grant = await acquire_one(store, 10, T0 + 1.3)  # 6.5 tokens
    assert grant.granted == 6
    assert grant.remaining == pytest.approx(0.5)
    state = await store.state(KEY, now=T0 + 1_000)
    assert state.tokens == 10.0  # never above capacity
    assert state.updated_at == T0 + 1.3  # state() is read only


async def test_time_never_runs_backwards_for_a_bucket(store: BucketStore):
    await acquire_one(store, 10, T0 + 10)
    grant = await acquire_one(store, 1, T0)  # a caller with a late clock refills nothing
    assert grant.granted == 0
    assert (await store.state(KEY, now=T0 + 10)).updated_at == T0 + 10


async def test_tenant_default_config_is_inherited(store: BucketStore):
    other = BucketKey("acme", "other.example.com")
    assert (await store.state(other, now=T0)).capacity == 10  # store default
    await store.configure(BucketKey("acme", ""), BucketConfig(3, 1), now=T0)
    inherited = await store.state(other, now=T0)
    assert (inherited.capacity, inherited.refill_per_s, inherited.tokens) == (3, 1, 3)
    own = await store.configure(KEY, BucketConfig(50, 20), now=T0)
    assert (own.capacity, own.refill_per_s, own.tokens) == (50, 20, 50)
    assert (await store.state(other, now=T0)).capacity == 3
    assert (await store.state(BucketKey("globex", "x"), now=T0)).capacity == 10


async def test_configure_keeps_tokens_capped_at_new_capacity(store: BucketStore):
    await acquire_one(store, 2, T0)  # 8 left
    state = await store.configure(KEY, BucketConfig(5, 1), now=T0)
    assert state.tokens == 5
    state = await store.configure(KEY, BucketConfig(100, 1), now=T0)
    assert state.tokens == 5


async def test_duplicate_keys_in_one_batch_apply_in_order(store: BucketStore):
    grants = await store.acquire([(KEY, 7), (KEY, 7), (KEY, 0)], now=T0)
    assert [g.granted for g in grants] == [7, 3, 0]
    assert [g.deny_reason for g in grants] == ["", "tokens", ""]


# -- adaptive: throttle and recovery ------------------------------------------------------


async def test_throttle_pauses_decreases_and_floors(store: BucketStore):
    # No goodput known yet: the first throttle halves the rate (decrease_factor).
    state = await store.throttle(KEY, retry_after_s=5, jitter_s=0.5, now=T0, reason="upstream 429")
    assert state.paused_until == T0 + 5.5
    assert state.effective_refill_per_s == 2.5
    assert state.tokens == 0
    assert state.reason == "upstream 429"

    # A learnt rate holds at most burst_s (0.2 s) of tokens, at least one: the wait is for 1.
    grant = await acquire_one(store, 2, T0 + 1)
    assert (grant.granted, grant.deny_reason) == (0, "paused")
    assert grant.retry_after_s == pytest.approx(4.5 + 1 / 2.5)
    assert grant.refill_per_s == 2.5

    # A report during the pause came from a request sent before it: one Retry-After per
    # host, so it neither extends the pause nor decreases again (issue 15).
    again = await store.throttle(KEY, retry_after_s=6, now=T0 + 1, reason="again")
    assert again.paused_until == T0 + 5.5
    assert again.effective_refill_per_s == 2.5

    # Nothing accrued during the pause; refill restarts at its end at the lower rate.
    assert (await store.state(KEY, now=T0 + 5.5)).tokens == 0
    after = await store.state(KEY, now=T0 + 7.5)
    assert after.tokens == pytest.approx(1)  # capped at the learnt burst
    assert after.paused_until is None
    assert after.reason == ""

    now = T0 + 10
    for expected in (1.25, 0.625, 0.5, 0.5):  # floor: min_refill_per_s
        state = await store.throttle(KEY, retry_after_s=1, now=now, reason="429")
        assert state.effective_refill_per_s == pytest.approx(expected)
        now += 2


async def _successes(
    store: BucketStore, key: BucketKey, per_report: int, start: float, end: float, step: float = 0.1
) -> BucketState:
    state = None
    for i in range(round((end - start) / step)):
        now = start + i * step
        state = await store.record_results(key, successes=per_report, failures=0, now=now)
    assert state is not None
    return state


async def _learnt_18(
    client: redis.asyncio.Redis, prefix: str, probe_hold_s: float
) -> tuple[BucketStore, BucketKey, BucketState]:
    """A bucket of the default configuration that learnt 18/s from a 429 after 20 successes/s."""
    # The default configuration: nothing binds until the upstream says 429.
    store = BucketStore(
        client,
        prefix=prefix,
        default=NON_BINDING,
        adaptive=AdaptivePolicy(probe_per_s=0.1, goodput_margin=0.9, probe_hold_s=probe_hold_s),
    )
    key = BucketKey("acme", "feed.example.org")
    # 20 successes/s for 2 s, then a 429: the rate becomes 90% of that goodput.
    state = await _successes(store, key, 2, T0, T0 + 2)
    assert state.effective_refill_per_s == NON_BINDING.refill_per_s  # nothing learnt yet
    state = await store.throttle(key, retry_after_s=1, now=T0 + 2, reason="429")
    assert state.effective_refill_per_s == pytest.approx(18)
    return store, key, state


async def test_goodput_before_the_429_is_the_learnt_rate(client, prefix: str):
    # no hold after the decrease: this test probes right after it
    store, key, state = await _learnt_18(client, prefix, probe_hold_s=0)
    assert state.paused_until == T0 + 3
    # Probing upward while the bucket binds (30/s of successes): at most probe_per_s of the
    # rate per second, compounded per report.
    state = await _successes(store, key, 3, T0 + 3.1, T0 + 4.1)
    assert 18 < state.effective_refill_per_s <= 18 * 1.01**10 + 1e-9
    # Application-limited (1 success/s, far below the rate): once the goodput window holds
    # only that, the rate learns nothing.
    state = await _successes(store, key, 1, T0 + 5, T0 + 15, step=1.0)
    probed = state.effective_refill_per_s
    state = await _successes(store, key, 1, T0 + 15, T0 + 45, step=1.0)
    assert state.effective_refill_per_s == pytest.approx(probed)
    # A host's own config is a ceiling over what was learnt.
    state = await store.configure(key, BucketConfig(10, 5), now=T0 + 45)
    assert state.effective_refill_per_s == 5


async def test_a_learnt_rate_holds_before_probing_again(client, prefix: str):
    store, key, _ = await _learnt_18(client, prefix, probe_hold_s=5)
    # The bucket binds (30 successes/s) but the rate just learnt holds for probe_hold_s ...
    state = await _successes(store, key, 3, T0 + 3.1, T0 + 6.9)
    assert state.effective_refill_per_s == pytest.approx(18)
    # ... and probes upward once it is over (credited since the last report, at T0+6.8).
    state = await _successes(store, key, 3, T0 + 7.1, T0 + 8.1)
    assert 18 < state.effective_refill_per_s <= 18 * 1.01**13 + 1e-9


async def test_a_flood_that_got_one_call_through_teaches_a_burst_of_one(client, prefix: str):
    store = BucketStore(client, prefix=prefix, default=NON_BINDING)
    key = BucketKey("acme", "strict.example.org")
    # Nothing bound the first calls: the upstream let one through and refused the rest.
    await store.record_results(key, successes=1, failures=0, now=T0)
    state = await store.throttle(key, retry_after_s=1, now=T0 + 0.01, reason="429")
    rate = state.effective_refill_per_s
    assert rate < NON_BINDING.refill_per_s
    # Long after the pause the bucket holds one token, not burst_s of its rate: calls go out
    # one at a time, 1 / rate apart.
    (grant,) = await store.acquire([(key, 5)], now=T0 + 60)
    assert grant.granted == 1
    assert grant.retry_after_s == pytest.approx(1 / rate)


async def test_acquire_writes_only_the_tokens_and_leaves_the_learnt_state(
    store: BucketStore, client: redis.asyncio.Redis
):
    # A bucket with adaptive state: successes (goodput samples, circuit window), a 429
    # (learnt rate, pause, episode) and more successes after the pause.
    await store.acquire([(KEY, 10)], now=T0)
    await store.record_results(KEY, successes=8, failures=0, now=T0 + 1)
    await store.throttle(KEY, retry_after_s=2, now=T0 + 2, reason="http_429")
    await store.record_results(KEY, successes=3, failures=1, now=T0 + 5)
    bucket = redis_keys(store.prefix, KEY).bucket
    before = await client.hgetall(bucket)
    learnt = (await store.state(KEY, now=T0 + 6)).effective_refill_per_s
    for step in range(1, 6):
        await store.acquire([(KEY, 3)], now=T0 + 6 + step * 0.5)
    after = await client.hgetall(bucket)
    moved = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    # Taking tokens refills, spends and stamps the time (and the last denial): nothing else.
    assert moved <= {b"tok", b"ts", b"bt"}, moved
    assert {b"tok", b"ts"} <= moved
    assert (await store.state(KEY, now=T0 + 9)).effective_refill_per_s == learnt


async def test_a_bucket_first_written_by_acquire_learns_like_any_other(
    store: BucketStore, client: redis.asyncio.Redis
):
    # acquire writes only the fields taking tokens needs; the others read as their defaults
    # when throttle and record load the whole bucket.
    await store.acquire([(KEY, 4)], now=T0)
    bucket = redis_keys(store.prefix, KEY).bucket
    assert b"gm" not in await client.hgetall(bucket)
    await store.record_results(KEY, successes=4, failures=0, now=T0 + 1)
    state = await store.throttle(KEY, retry_after_s=1, now=T0 + 1.5, reason="http_429")
    assert state.paused_until is not None
    assert 0 < state.effective_refill_per_s < 5
    fields = await client.hgetall(bucket)
    assert b"cut" in fields
    assert b"es" in fields


async def test_override_set_expire_and_clear(store: BucketStore):
    await acquire_one(store, 10, T0)
    state = await store.override(KEY, refill_per_s=1, until=T0 + 10, reason="ops", now=T0)
    assert (state.effective_refill_per_s, state.reason) == (1, "ops")
    assert (await store.state(KEY, now=T0 + 4)).tokens == pytest.approx(4)
    # The override ends at T0+10: 10 tokens by then (capped), the rest at 5/s.
    await acquire_one(store, 10, T0 + 4)
    assert (await store.state(KEY, now=T0 + 10.4)).tokens == pytest.approx(6 + 2)
    assert (await store.state(KEY, now=T0 + 10.5)).effective_refill_per_s == 5

    stopped = await store.override(KEY, refill_per_s=0, until=None, reason="stop", now=T0 + 20)
    assert stopped.effective_refill_per_s == 0
    grant = await acquire_one(store, 1, T0 + 20)
    assert (grant.granted, grant.deny_reason) == (0, "paused")
    assert grant.retry_after_s == pytest.approx(60)
    cleared = await store.override(KEY, refill_per_s=None, until=None, reason="", now=T0 + 21)
    assert (cleared.effective_refill_per_s, cleared.reason) == (5, "")
    assert (await acquire_one(store, 1, T0 + 21)).granted == 1


# -- circuit breaker ----------------------------------------------------------------------


async def test_circuit_closed_open_half_open_closed(store: BucketStore):
    state = await store.record_results(KEY, successes=2, failures=1, now=T0)
    assert state.circuit == "closed"  # 3 < min_volume 4
    state = await store.record_results(KEY, successes=0, failures=1, now=T0 + 1)
    assert state.circuit == "open"  # 2/4 >= 0.5

    grant = await acquire_one(store, 3, T0 + 5)
    assert (grant.granted, grant.deny_reason) == (0, "circuit_open")
    assert grant.retry_after_s == pytest.approx(11)  # half-open at T0+16

    assert (await store.state(KEY, now=T0 + 16)).circuit == "half_open"
    probe = await acquire_one(store, 3, T0 + 16)
    assert (probe.granted, probe.deny_reason) == (1, "circuit_open")
    blocked = await acquire_one(store, 1, T0 + 17)
    assert (blocked.granted, blocked.deny_reason) == (0, "circuit_open")
    assert blocked.retry_after_s == pytest.approx(14)

    state = await store.record_results(KEY, successes=1, failures=0, now=T0 + 18)
    assert state.circuit == "closed"
    assert (await acquire_one(store, 3, T0 + 18)).granted == 3


async def test_circuit_half_open_failure_opens_again(store: BucketStore):
    await store.record_results(KEY, successes=0, failures=4, now=T0)
    assert (await acquire_one(store, 1, T0 + 15)).granted == 1  # the probe
    state = await store.record_results(KEY, successes=0, failures=1, now=T0 + 16)
    assert state.circuit == "open"
    grant = await acquire_one(store, 1, T0 + 20)
    assert grant.deny_reason == "circuit_open"
    assert grant.retry_after_s == pytest.approx(11)


async def test_circuit_window_resets(store: BucketStore):
    await store.record_results(KEY, successes=0, failures=3, now=T0)
    # The window of T0 is over: 1 failure in a new window is below min_volume.
    state = await store.record_results(KEY, successes=0, failures=1, now=T0 + 31)
    assert state.circuit == "closed"


# -- listing, batching, availability ------------------------------------------------------


async def test_list_states_sorted_by_host(store: BucketStore, client: redis.asyncio.Redis):
    await store.configure(BucketKey("acme", ""), BucketConfig(3, 1), now=T0)
    await store.acquire(
        [(BucketKey("acme", h), 1) for h in ("z.example", "a.example", "m.example")]
        + [(BucketKey("globex", "x"), 1)],
        now=T0,
    )
    states = await store.list_states("acme", now=T0 + 1)
    assert [s.key.host for s in states] == ["", "a.example", "m.example", "z.example"]
    assert all(s.capacity == 3 for s in states)
    assert [s.key.host for s in await store.list_states("globex", now=T0)] == ["x"]
    assert await store.list_states("nobody", now=T0) == []
    # An expired bucket drops out of the listing (and the index); a configured one stays.
    await client.delete(f"{store.prefix}b:{{acme}}:m.example", f"{store.prefix}b:{{acme}}:")
    hosts = [s.key.host for s in await store.list_states("acme", now=T0 + 2)]
    assert hosts == ["", "a.example", "z.example"]
    assert b"m.example" not in await client.smembers(f"{store.prefix}i:{{acme}}")


async def test_buckets_expire_when_idle(store: BucketStore, client: redis.asyncio.Redis):
    await acquire_one(store, 1, T0)
    ttl = await client.ttl(f"{store.prefix}b:{{acme}}:api.example.com")
    assert 86_000 < ttl <= 86_400
    assert await client.ttl(f"{store.prefix}i:{{acme}}") > 86_000


class CountingPipelines:
    """Counts pipeline round trips and single commands a client sends."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.round_trips = 0
        self.commands: list[str] = []  # names of the commands sent, in order
        original_pipeline = client.pipeline
        original_execute_command = client.execute_command

        def pipeline(*args, **kwargs):
            pipe = original_pipeline(*args, **kwargs)
            original_execute = pipe.execute

            async def execute(*a, **k):
                self.round_trips += 1
                self.commands += [str(args[0]).upper() for args, _ in pipe.command_stack]
                return await original_execute(*a, **k)

            pipe.execute = execute
            return pipe

        async def execute_command(*args, **kwargs):
            self.round_trips += 1
            self.commands.append(str(args[0]).upper())
            return await original_execute_command(*args, **kwargs)

        client.pipeline = pipeline
        client.execute_command = execute_command


async def test_batched_acquire_is_one_round_trip(client: redis.asyncio.Redis, prefix: str):
    store = BucketStore(client, prefix=prefix)
    await store.state(KEY, now=T0)  # first use loads the scripts
    counter = CountingPipelines(client)
    requests = [(BucketKey("acme", f"h{i}"), 1) for i in range(50)]
    grants = await store.acquire(requests, now=T0)
    assert counter.round_trips == 1
    assert [g.granted for g in grants] == [1] * 50
    # one script call for the whole batch (counted on this client: the Redis server is shared)
    assert counter.commands == ["EVALSHA"]

    counter.round_trips = 0
    mixed = requests + [(BucketKey("globex", f"h{i}"), 1) for i in range(5)]
    grants = await store.acquire(mixed, now=T0 + 1)
    assert len(grants) == 55
    assert counter.round_trips == 1  # one script call per tenant, one pipeline


async def test_scripts_reload_after_script_flush(store: BucketStore, client: redis.asyncio.Redis):
    assert (await acquire_one(store, 1, T0)).granted == 1
    await client.script_flush()
    assert (await acquire_one(store, 1, T0)).granted == 1
    assert (await store.state(KEY, now=T0)).tokens == 8


async def test_redis_unavailable_on_closed_port():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = redis.asyncio.Redis(port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    try:
        store = BucketStore(conn)
        assert await store.ping() is False
        with pytest.raises(RedisUnavailable) as caught:
            await store.acquire([(KEY, 1)], now=T0)
        assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
        with pytest.raises(RedisUnavailable):
            await store.state(KEY, now=T0)
        with pytest.raises(RedisUnavailable):
            await store.list_states("acme", now=T0)
    finally:
        await conn.aclose()


async def test_ping(store: BucketStore):
    assert await store.ping() is True


async def test_decisions_per_s_benchmark_runs(store: BucketStore, client: redis.asyncio.Redis):
    rate = await acquire_decisions_per_s(store, n_keys=20, batch=50, seconds=0.3)
    assert rate > 0
    assert [k async for k in client.scan_iter(match=f"{store.prefix}*")] == []


# -- the property: the bucket never over-grants and matches a reference model --------------


@dataclass
class ModelBucket:
    """Pure-Python reference of one bucket (no pause, no override, closed circuit): refill
    ``min(capacity, tokens + rate * elapsed)`` when time moved forward, then whole tokens."""

    capacity: float
    rate: float
    tokens: float
    ts: float

    def acquire(self, n: int, now: float) -> tuple[int, float]:
        if now > self.ts:
            self.tokens = min(self.capacity, self.tokens + self.rate * (now - self.ts))
            self.ts = now
        granted = min(n, math.floor(self.tokens)) if n > 0 else 0
        self.tokens -= granted
        return granted, self.tokens


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    capacity=st.integers(min_value=1, max_value=50),
    rate=st.sampled_from([0.5, 1.0, 2.5, 7.0, 33.3]),
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=5, allow_nan=False).map(lambda x: round(x, 3)),
            st.integers(min_value=0, max_value=60),
        ),
        min_size=1,
        max_size=40,
    ),
)
async def test_property_grants_never_exceed_capacity_plus_refill(
    client: redis.asyncio.Redis, capacity: int, rate: float, steps: list[tuple[float, int]]
):
    prefix = f"test:prop:{uuid.uuid4().hex[:12]}:"
    store = BucketStore(client, prefix=prefix)
    key = BucketKey("prop", "h")
    try:
        await store.configure(key, BucketConfig(capacity, rate), now=T0)
        model = ModelBucket(capacity, rate, float(capacity), T0)
        now, total = T0, 0
        for dt, n in steps:
            now += dt
            grant = await acquire_one(store, n, now, key)
            expected, remaining = model.acquire(n, now)
            assert grant.granted == expected
            assert grant.remaining == remaining
            assert 0 <= grant.granted <= n
            assert grant.remaining >= 0
            total += grant.granted
            assert total <= capacity + rate * (now - T0) + 1e-9
            if grant.granted < n:
                assert grant.deny_reason == "tokens"
                assert grant.retry_after_s > 0
            else:
                assert (grant.deny_reason, grant.retry_after_s) == ("", 0.0)
        state = await store.state(key, now=now)
        assert 0 <= state.tokens <= capacity
    finally:
        await _delete_prefix(client, prefix)
