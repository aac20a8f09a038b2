"""The ratelimit service over real gRPC channels, against a real Redis and PostgreSQL.

The service runs in-process on a free port with a random Redis key prefix (so parallel
sessions and other tests never share buckets); each test uses its own hosts. Tests that
need a deterministic clock pass ``AcquireRequest.now`` (enabled for the test server). The
Redis failure test starts its own ``redis-server`` on a free port and kills it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
import redis.asyncio
from google.protobuf import duration_pb2, timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator_grpckit import mint_dev_token
from orchestrator_ratelimit import (
    ENVOY_SERVICE_NAME,
    SERVICE_NAME,
    RatelimitApp,
    RatelimitSettings,
    Weekly,
    Window,
    active_until,
    blackout_until,
    build_app,
)
from orchestrator_ratelimit import _metrics as rl_metrics
from stella.orchestrator.v1 import common_pb2, ratelimit_pb2, ratelimit_pb2_grpc, resources_pb2
from tests.conftest import DEV_SECRET, REDIS_URL, service_config

from envoy.extensions.common.ratelimit.v3 import ratelimit_pb2 as envoy_common  # isort: skip
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc  # isort: skip

pytestmark = pytest.mark.integration

ALL = ("orch:read", "orch:work", "orch:quota", "orch:operate")
OPERATOR = common_pb2.OperatorContext(reason="integration test", ticket="OPS-1")
DEFAULTS_TENANT = "rl-defaults"


def _host(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}.example.org"


def _ts(value: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def _dur(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(timedelta(seconds=seconds))
    return out


def _settings(**overrides: object) -> RatelimitSettings:
    values: dict[str, object] = {
        "key_prefix": f"orch:rltest:{uuid.uuid4().hex}:",
        "jitter_s": 0.0,
        "envoy_port": 0,
        "allow_request_clock": True,
        "probe_interval_s": 0.2,
        "redis_timeout_s": 0.3,
    }
    values.update(overrides)
    return RatelimitSettings(**values)  # type: ignore[arg-type]


async def _purge(prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def defaults_tenant(database_url: str, tenants: tuple[str, str]) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orchestrator.tenants (id) VALUES (%s) ON CONFLICT DO NOTHING",
            (DEFAULTS_TENANT,),
        )
    return DEFAULTS_TENANT


@pytest.fixture(scope="module")
async def app(database_url: str, defaults_tenant: str) -> AsyncIterator[RatelimitApp]:
    settings = _settings()
    async with build_app(
        service_config("ratelimit", database_url), redis_url=REDIS_URL, settings=settings
    ) as built:
        await built.service.start()
        try:
            yield built
        finally:
            await built.service.stop()
    await _purge(settings.key_prefix)


@pytest.fixture
async def channel(app: RatelimitApp) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.service.port}") as ch:
        yield ch


class Client:
    """A RateLimitService stub that sends a bearer token (and a tenant) with every call."""

    def __init__(self, channel: grpc.aio.Channel, token: str, tenant: str | None = None):
        self._stub = ratelimit_pb2_grpc.RateLimitServiceStub(channel)
        md = [("authorization", f"Bearer {token}")]
        if tenant:
            md.append(("x-stella-tenant", tenant))
        self.metadata = tuple(md)

    def __getattr__(self, name: str):
        method = getattr(self._stub, name)

        def call(request, **kwargs):
            return method(request, metadata=self.metadata, **kwargs)

        return call


def _client(channel: grpc.aio.Channel, tenant: str = "acme", scopes=ALL) -> Client:
    return Client(channel, mint_dev_token(DEV_SECRET, "tester", [tenant], scopes))


@pytest.fixture
def rl(channel: grpc.aio.Channel) -> Client:
    return _client(channel)


def _key(host: str, tenant: str = "") -> ratelimit_pb2.BucketKey:
    return ratelimit_pb2.BucketKey(tenant=tenant, host=host)


async def _configure(client: Client, host: str, capacity: int, rate: float) -> None:
    await client.ConfigureBucket(
        ratelimit_pb2.ConfigureBucketRequest(
            key=_key(host), capacity=capacity, refill_per_second=rate, operator=OPERATOR
        )
    )


def _acquire(*hosts: str, now: datetime | None = None, source_id: str = ""):
    request = ratelimit_pb2.AcquireRequest(
        items=[
            ratelimit_pb2.AcquireRequestItem(key=_key(h), tokens=1, source_id=source_id)
            for h in hosts
        ]
    )
    if now is not None:
        request.now.CopyFrom(_ts(now))
    return request


# ----------------------------------------------------------------- tokens


async def test_acquire_grants_then_denies_with_retry_after(rl: Client) -> None:
    host = _host("acq")
    await _configure(rl, host, capacity=3, rate=1.0)
    now = datetime.now(UTC) + timedelta(seconds=1)
    response = await rl.Acquire(_acquire(host, host, host, host, now=now))
    granted = [g.granted for g in response.grants]
    assert granted == [True, True, True, False]
    denied = response.grants[3]
    assert denied.deny_reason == "tokens"
    assert denied.retry_after.ToTimedelta() == timedelta(seconds=1)
    assert denied.available_at.ToDatetime(tzinfo=UTC) == now + timedelta(seconds=1)
    assert denied.key.tenant == "acme"
    assert denied.key.host == host
    assert response.grants[2].remaining == pytest.approx(0.0)

    later = await rl.Acquire(_acquire(host, now=now + timedelta(seconds=1)))
    assert later.grants[0].granted


async def test_multi_token_acquire_is_all_or_nothing_unless_partial(rl: Client) -> None:
    host = _host("multi")
    await _configure(rl, host, capacity=5, rate=1.0)
    now = datetime.now(UTC) + timedelta(seconds=1)

    def item(tokens: int, partial: bool = False) -> ratelimit_pb2.AcquireRequestItem:
        return ratelimit_pb2.AcquireRequestItem(key=_key(host), tokens=tokens, partial=partial)

    first = await rl.Acquire(ratelimit_pb2.AcquireRequest(items=[item(3)], now=_ts(now)))
    assert first.grants[0].granted
    assert first.grants[0].granted_tokens == 3
    # 2 left: asking for 4 takes nothing and says when all 4 could go.
    whole = await rl.Acquire(ratelimit_pb2.AcquireRequest(items=[item(4)], now=_ts(now)))
    (denied,) = whole.grants
    assert (denied.granted, denied.granted_tokens, denied.deny_reason) == (False, 0, "tokens")
    assert denied.remaining == pytest.approx(2.0)  # the short bucket kept its tokens
    assert denied.retry_after.ToTimedelta() == timedelta(seconds=2)
    # partial takes the 2 there are and tells when the other 2 could go.
    part = await rl.Acquire(ratelimit_pb2.AcquireRequest(items=[item(4, True)], now=_ts(now)))
    (some,) = part.grants
    assert (some.granted, some.granted_tokens) == (False, 2)
    assert some.remaining == pytest.approx(0.0)
    assert some.retry_after.ToTimedelta() == timedelta(seconds=2)


async def test_configure_bucket_per_source_and_tenant_default(channel: grpc.aio.Channel) -> None:
    client = _client(channel, DEFAULTS_TENANT)
    default = await client.ConfigureBucket(
        ratelimit_pb2.ConfigureBucketRequest(
            key=_key(""), capacity=2, refill_per_second=0.5, operator=OPERATOR
        )
    )
    assert default.bucket.capacity == 2
    plain = await client.GetBucket(ratelimit_pb2.GetBucketRequest(key=_key("plain.example.org")))
    assert plain.bucket.capacity == 2
    assert plain.bucket.refill_per_second == pytest.approx(0.5)

    own = await client.ConfigureBucket(
        ratelimit_pb2.ConfigureBucketRequest(
            key=_key("own.example.org"), capacity=7, refill_per_second=3, operator=OPERATOR
        )
    )
    assert own.bucket.capacity == 7
    assert own.bucket.effective_refill_per_second == pytest.approx(3)
    again = await client.GetBucket(ratelimit_pb2.GetBucketRequest(key=_key("plain.example.org")))
    assert again.bucket.capacity == 2

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await client.ConfigureBucket(
            ratelimit_pb2.ConfigureBucketRequest(
                key=_key("own.example.org"), capacity=0, refill_per_second=1
            )
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "operator.reason" in str(bad.value.details()) or bad.value.details()


async def test_report_throttle_pauses_lowers_rate_and_records_event(
    rl: Client, db: psycopg.Connection
) -> None:
    host = _host("thr")
    await _configure(rl, host, capacity=5, rate=2.0)
    job_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as unknown:  # not acme's job: nothing changes
        await rl.ReportThrottle(
            ratelimit_pb2.ReportThrottleRequest(
                key=_key(host), error_class=common_pb2.ERROR_CLASS_HTTP_429, job_id=job_id
            )
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    untouched = await rl.GetBucket(ratelimit_pb2.GetBucketRequest(key=_key(host)))
    assert not untouched.bucket.HasField("paused_until")
    db.execute(
        "INSERT INTO orchestrator.jobs (id, tenant, job_type, state, reason, payload_digest,"
        " max_attempts, initial_backoff_s, max_backoff_s, backoff_multiplier, not_before,"
        " created_at, updated_at) VALUES (%s, 'acme', 'thr.probe', 'ready', 'submitted',"
        " 'sha256:' || repeat('0', 64), 3, 1, 10, 2, now(), now(), now())",
        (job_id,),
    )
    before = datetime.now(UTC)
    response = await rl.ReportThrottle(
        ratelimit_pb2.ReportThrottleRequest(
            key=_key(host),
            error_class=common_pb2.ERROR_CLASS_HTTP_429,
            retry_after=_dur(30),
            job_id=job_id,
        )
    )
    bucket = response.bucket
    assert bucket.effective_refill_per_second < 2.0
    assert bucket.refill_per_second == pytest.approx(2.0)
    paused_until = bucket.paused_until.ToDatetime(tzinfo=UTC)
    assert before + timedelta(seconds=29) < paused_until < before + timedelta(seconds=40)
    assert "429" in bucket.reason
    assert response.throttle.origin == resources_pb2.THROTTLE_ORIGIN_UPSTREAM_429
    assert response.throttle.host == host

    row = db.execute(
        "SELECT origin, effective_refill_per_second, paused_until, job_id::text, created_by"
        " FROM orchestrator.throttles WHERE id = %s",
        (response.throttle.id,),
    ).fetchone()
    assert row is not None
    assert row[0] == "upstream_429"
    assert row[1] == pytest.approx(bucket.effective_refill_per_second)
    assert row[3] == job_id
    assert row[4] == "tester"
    event = db.execute(
        "SELECT type, data FROM orchestrator.events"
        " WHERE tenant = 'acme' AND type = 'throttle.changed' AND data->>'throttle_id' = %s",
        (response.throttle.id,),
    ).fetchone()
    assert event is not None
    assert event[1]["host"] == host
    assert event[1]["origin"] == "upstream_429"
    assert event[1]["paused_until"] is not None

    denied = await rl.Acquire(_acquire(host))
    assert not denied.grants[0].granted
    assert denied.grants[0].deny_reason == "paused"
    assert denied.grants[0].retry_after.ToTimedelta() > timedelta(seconds=25)

    got = await rl.GetBucket(ratelimit_pb2.GetBucketRequest(key=_key(host)))
    assert got.bucket.effective_refill_per_second == pytest.approx(
        bucket.effective_refill_per_second
    )
    assert got.bucket.reason == bucket.reason

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await rl.ReportThrottle(
            ratelimit_pb2.ReportThrottleRequest(
                key=_key(host), error_class=common_pb2.ERROR_CLASS_TIMEOUT
            )
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_throttle_override_set_and_clear(rl: Client, db: psycopg.Connection) -> None:
    host = _host("ovr")
    await _configure(rl, host, capacity=5, rate=2.0)
    until = datetime.now(UTC) + timedelta(minutes=5)
    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await rl.SetThrottleOverride(
            ratelimit_pb2.SetThrottleOverrideRequest(
                key=_key(host), refill_per_second=0.5, until=_ts(until)
            )
        )
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    operator = common_pb2.OperatorContext(reason="upstream asked us to slow down", ticket="OPS-7")
    response = await rl.SetThrottleOverride(
        ratelimit_pb2.SetThrottleOverrideRequest(
            key=_key(host), refill_per_second=0.5, until=_ts(until), operator=operator
        )
    )
    assert response.bucket.effective_refill_per_second == pytest.approx(0.5)
    assert response.bucket.reason == operator.reason
    assert response.throttle.origin == resources_pb2.THROTTLE_ORIGIN_OPERATOR
    assert response.throttle.ticket == "OPS-7"
    assert abs(response.throttle.expires_at.ToDatetime(tzinfo=UTC) - until) < timedelta(
        milliseconds=1
    )

    cleared = await rl.ClearThrottleOverride(
        ratelimit_pb2.ClearThrottleOverrideRequest(key=_key(host), operator=operator)
    )
    assert cleared.bucket.effective_refill_per_second == pytest.approx(2.0)
    origins = [
        r[0]
        for r in db.execute(
            "SELECT origin FROM orchestrator.throttles WHERE tenant = 'acme' AND host = %s"
            " ORDER BY id",
            (host,),
        ).fetchall()
    ]
    assert origins == ["operator", "operator", "operator"]  # configure, set, clear
    audit = db.execute(
        "SELECT action FROM orchestrator.audit_entries WHERE target = %s ORDER BY id",
        (f"bucket/{host}",),
    ).fetchall()
    assert [a[0] for a in audit] == [
        "bucket.configure",
        "bucket.override.set",
        "bucket.override.clear",
    ]


async def test_list_buckets_pages_by_host(rl: Client) -> None:
    hosts = sorted(_host(f"list{i}") for i in range(3))
    for host in hosts:
        await _configure(rl, host, capacity=4, rate=1.0)
    seen: list[str] = []
    token = ""
    while True:
        page = await rl.ListBuckets(ratelimit_pb2.ListBucketsRequest(page_size=2, page_token=token))
        assert len(page.buckets) <= 2
        seen += [b.key.host for b in page.buckets]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen)
    assert set(hosts) <= set(seen)
    listed = {
        b.key.host: b
        for b in (await rl.ListBuckets(ratelimit_pb2.ListBucketsRequest(page_size=500))).buckets
    }
    assert listed[hosts[0]].capacity == 4
    assert listed[hosts[0]].circuit_state == common_pb2.CIRCUIT_STATE_CLOSED

    circuits = await rl.ListCircuits(
        ratelimit_pb2.ListCircuitsRequest(states=[common_pb2.CIRCUIT_STATE_CLOSED], page_size=500)
    )
    assert hosts[0] in {c.key.host for c in circuits.circuits}
    one = await rl.GetCircuit(ratelimit_pb2.GetCircuitRequest(key=_key(hosts[0])))
    assert one.circuit.state == common_pb2.CIRCUIT_STATE_CLOSED


# ----------------------------------------------------------------- blackouts


def _source(db: psycopg.Connection, host: str) -> str:
    source_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO orchestrator.sources (id, tenant, name, source_type, host, created_at,"
        " updated_at) VALUES (%s, 'acme', %s, 'test', %s, now(), now())",
        (source_id, f"src-{source_id[:8]}", host),
    )
    return source_id


async def test_blackout_of_a_source_denies_until_its_end(
    rl: Client, db: psycopg.Connection
) -> None:
    host = _host("blk")
    source_id = _source(db, host)
    now = datetime.now(UTC).replace(microsecond=0)
    end = now + timedelta(hours=1)
    created = await rl.SetBlackout(
        ratelimit_pb2.SetBlackoutRequest(
            blackout=ratelimit_pb2.Blackout(
                source_id=source_id,
                start=_ts(now - timedelta(hours=1)),
                end=_ts(end),
                reason="upstream maintenance",
            ),
            operator=OPERATOR,
        )
    )
    blackout = created.blackout
    assert blackout.id
    assert blackout.tenant == "acme"
    assert blackout.created_by == "tester"

    denied = await rl.Acquire(_acquire(host, source_id=source_id))
    grant = denied.grants[0]
    assert not grant.granted
    assert grant.deny_reason == "blackout"
    assert grant.available_at.ToDatetime(tzinfo=UTC) == end

    other = await rl.Acquire(_acquire(host))  # no source: only tenant-wide blackouts apply
    assert other.grants[0].granted

    listed = await rl.ListBlackouts(ratelimit_pb2.ListBlackoutsRequest(source_id=source_id))
    assert blackout.id in [b.id for b in listed.blackouts]

    await rl.DeleteBlackout(
        ratelimit_pb2.DeleteBlackoutRequest(blackout_id=blackout.id, operator=OPERATOR)
    )
    granted = await rl.Acquire(_acquire(host, source_id=source_id))
    assert granted.grants[0].granted

    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await rl.DeleteBlackout(
            ratelimit_pb2.DeleteBlackoutRequest(blackout_id=blackout.id, operator=OPERATOR)
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_weekly_tenant_blackout_active_and_inactive(rl: Client) -> None:
    host = _host("wk")
    start = datetime(2031, 1, 1, tzinfo=UTC)
    created = await rl.SetBlackout(
        ratelimit_pb2.SetBlackoutRequest(
            blackout=ratelimit_pb2.Blackout(
                start=_ts(start),
                recurrence=ratelimit_pb2.BlackoutRecurrence(
                    weekly=ratelimit_pb2.WeeklyRecurrence(
                        days=[ratelimit_pb2.WEEKDAY_MONDAY],
                        start_minute_utc=120,
                        duration=_dur(2 * 3600),
                    )
                ),
            ),
            operator=OPERATOR,
        )
    )
    try:
        assert created.blackout.recurrence.weekly.start_minute_utc == 120
        monday = datetime(2031, 1, 6, tzinfo=UTC)  # a Monday
        inside = await rl.Acquire(_acquire(host, now=monday + timedelta(hours=3)))
        assert inside.grants[0].deny_reason == "blackout"
        assert inside.grants[0].available_at.ToDatetime(tzinfo=UTC) == monday + timedelta(hours=4)
        outside = await rl.Acquire(_acquire(host, now=monday + timedelta(hours=5)))
        assert outside.grants[0].granted
    finally:
        await rl.DeleteBlackout(
            ratelimit_pb2.DeleteBlackoutRequest(blackout_id=created.blackout.id, operator=OPERATOR)
        )


async def test_blackout_validation(rl: Client) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await rl.SetBlackout(
            ratelimit_pb2.SetBlackoutRequest(
                blackout=ratelimit_pb2.Blackout(start=_ts(datetime.now(UTC))),
                operator=OPERATOR,
            )
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_weekly_recurrence_crossing_midnight() -> None:
    weekly = Weekly(frozenset({7}), 23 * 60, 2 * 3600)  # Sunday 23:00 for 2 h
    window = Window(datetime(2030, 1, 1, tzinfo=UTC), None, weekly)
    sunday = datetime(2030, 1, 6, tzinfo=UTC)
    assert sunday.isoweekday() == 7
    assert active_until(window, sunday + timedelta(hours=22, minutes=59)) is None
    assert active_until(window, sunday + timedelta(hours=23)) == sunday + timedelta(hours=25)
    assert active_until(window, sunday + timedelta(hours=24, minutes=30)) == sunday + timedelta(
        hours=25
    )
    assert active_until(window, sunday + timedelta(hours=25)) is None
    assert active_until(window, sunday + timedelta(days=1, hours=23)) is None  # Monday


def test_weekly_recurrence_respects_start_end_and_clips() -> None:
    weekly = Weekly(frozenset({1, 3}), 60, 3600)  # Mon and Wed 01:00-02:00
    monday = datetime(2030, 1, 7, tzinfo=UTC)
    window = Window(monday, monday + timedelta(days=2, hours=1, minutes=30), weekly)
    assert active_until(window, monday + timedelta(hours=1, minutes=5)) == monday + timedelta(
        hours=2
    )
    wednesday = monday + timedelta(days=2)
    assert active_until(window, wednesday + timedelta(hours=1, minutes=10)) == wednesday + (
        timedelta(hours=1, minutes=30)
    )
    assert active_until(window, wednesday + timedelta(hours=1, minutes=40)) is None
    assert active_until(window, monday - timedelta(days=7) + timedelta(hours=1)) is None
    assert active_until(window, monday + timedelta(days=1, hours=1)) is None  # Tuesday


def test_single_range_and_chained_windows() -> None:
    t0 = datetime(2030, 5, 1, 12, tzinfo=UTC)
    first = Window(t0, t0 + timedelta(hours=1))
    second = Window(t0 + timedelta(hours=1), t0 + timedelta(hours=3))
    assert active_until(first, t0) == t0 + timedelta(hours=1)
    assert active_until(first, t0 + timedelta(hours=1)) is None
    assert blackout_until([first, second], t0 + timedelta(minutes=5)) == t0 + timedelta(hours=3)
    assert blackout_until([first, second], t0 - timedelta(minutes=5)) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        active_until(first, datetime(2030, 5, 1, 12))


# ----------------------------------------------------------------- envoy


def _envoy_request(domain: str, host: str, tenant: str | None = None) -> object:
    entries = [envoy_common.RateLimitDescriptor.Entry(key="host", value=host)]
    if tenant:
        entries.append(envoy_common.RateLimitDescriptor.Entry(key="tenant", value=tenant))
    return rls_pb2.RateLimitRequest(
        domain=domain, descriptors=[envoy_common.RateLimitDescriptor(entries=entries)]
    )


def _headers(response: rls_pb2.RateLimitResponse) -> dict[str, str]:
    return {h.key: h.value for h in response.response_headers_to_add}


async def test_envoy_should_rate_limit_ok_then_over_limit(
    app: RatelimitApp, rl: Client, channel: grpc.aio.Channel
) -> None:
    host = _host("envoy")
    await _configure(rl, host, capacity=2, rate=0.1)
    assert app.envoy_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.envoy_port}") as public:
        stub = rls_pb2_grpc.RateLimitServiceStub(public)
        first = await stub.ShouldRateLimit(_envoy_request("acme", host))
        assert first.overall_code == rls_pb2.RateLimitResponse.OK
        assert _headers(first) == {
            "x-ratelimit-limit": "2",
            "x-ratelimit-remaining": "1",
            "x-ratelimit-reset": "10",
        }
        status = first.statuses[0]
        assert status.code == rls_pb2.RateLimitResponse.OK
        assert status.limit_remaining == 1
        assert status.current_limit.requests_per_unit == 6
        assert status.current_limit.unit == rls_pb2.RateLimitResponse.RateLimit.MINUTE
        second = await stub.ShouldRateLimit(_envoy_request("other-domain", host, "acme"))
        assert second.overall_code == rls_pb2.RateLimitResponse.OK
        third = await stub.ShouldRateLimit(_envoy_request("acme", host))
        assert third.overall_code == rls_pb2.RateLimitResponse.OVER_LIMIT
        assert third.statuses[0].code == rls_pb2.RateLimitResponse.OVER_LIMIT
        headers = _headers(third)
        assert headers["x-ratelimit-remaining"] == "0"
        assert int(headers["x-ratelimit-reset"]) >= 9
        assert third.statuses[0].duration_until_reset.ToTimedelta() > timedelta(seconds=9)

        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.ShouldRateLimit(rls_pb2.RateLimitRequest(domain="acme"))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # On the main port the method needs a token, and the descriptors' tenant must be its own.
    main = rls_pb2_grpc.RateLimitServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await main.ShouldRateLimit(_envoy_request("acme", host))
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await main.ShouldRateLimit(_envoy_request("x", host, "globex"), metadata=rl.metadata)
    assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
    authed = await main.ShouldRateLimit(_envoy_request("x", host), metadata=rl.metadata)
    assert authed.overall_code == rls_pb2.RateLimitResponse.OVER_LIMIT


async def test_envoy_listener_hides_an_unexpected_error(
    app: RatelimitApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token-less listener answers an unexpected exception INTERNAL with a generic
    message, as the main port does; grpc.aio alone would send UNKNOWN with the message."""
    leaked = "redis://:hunter2@cache.internal:6379 refused"

    async def broken(*_: object) -> object:
        raise RuntimeError(leaked)

    monkeypatch.setattr(app.limiter, "decide", broken)  # a fault no real part produces
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.envoy_port}") as public:
        stub = rls_pb2_grpc.RateLimitServiceStub(public)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stub.ShouldRateLimit(_envoy_request("acme", _host("broken")))
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in (failed.value.details() or "")
    assert "hunter2" not in repr(failed.value.trailing_metadata())


# ----------------------------------------------------------------- tenancy and scopes


async def test_cross_tenant_key_is_permission_denied(rl: Client, channel: grpc.aio.Channel) -> None:
    host = _host("xt")
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await rl.Acquire(
            ratelimit_pb2.AcquireRequest(
                items=[ratelimit_pb2.AcquireRequestItem(key=_key(host, "globex"))]
            )
        )
    assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as listing:
        await rl.ListBuckets(ratelimit_pb2.ListBucketsRequest(tenant="globex"))
    assert listing.value.code() == grpc.StatusCode.PERMISSION_DENIED

    own = await rl.Acquire(
        ratelimit_pb2.AcquireRequest(
            items=[ratelimit_pb2.AcquireRequestItem(key=_key(host, "acme"))]
        )
    )
    assert own.grants[0].granted

    platform = Client(
        channel, mint_dev_token(DEV_SECRET, "fleet", ["*"], ("orch:work",)), tenant="globex"
    )
    theirs = await platform.Acquire(
        ratelimit_pb2.AcquireRequest(
            items=[ratelimit_pb2.AcquireRequestItem(key=_key(host, "globex"))]
        )
    )
    assert theirs.grants[0].granted
    assert theirs.grants[0].key.tenant == "globex"

    reader = _client(channel, scopes=("orch:read",))
    with pytest.raises(grpc.aio.AioRpcError) as scope:
        await reader.Acquire(_acquire(host))
    assert scope.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_request_clock_is_refused_unless_enabled(database_url: str) -> None:
    settings = _settings(allow_request_clock=False, envoy_auth="token")
    async with build_app(
        service_config("ratelimit", database_url), redis_url=REDIS_URL, settings=settings
    ) as built:
        await built.service.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{built.service.port}") as ch:
                with pytest.raises(grpc.aio.AioRpcError) as bad:
                    await _client(ch).Acquire(_acquire("h.example.org", now=datetime.now(UTC)))
                assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        finally:
            await built.service.stop()


# ----------------------------------------------------------------- Redis failure


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _redis_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    binary = shutil.which("redis-server")
    if binary is None:
        # scripts/services.sh installs it for `make test`: missing is a broken set-up, not a skip
        pytest.fail("redis-server is not on PATH; run `bash scripts/services.sh start` first")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


async def _wait_redis(port: int) -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(100):
            with contextlib.suppress(Exception):
                if await client.ping():
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"redis-server on {port} did not come up")
    finally:
        await client.aclose()


async def _health(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    return int(response.status)


async def test_redis_down_fails_closed_then_recovers(database_url: str) -> None:
    port = _free_port()
    settings = _settings(envoy_auth="token")
    with _redis_server(port) as server:
        await _wait_redis(port)
        async with build_app(
            service_config("ratelimit", database_url),
            redis_url=f"redis://127.0.0.1:{port}/0",
            settings=settings,
        ) as built:
            await built.service.start()
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{built.service.port}") as ch:
                    client = _client(ch)
                    host = _host("down")
                    ok = await client.Acquire(_acquire(host))
                    assert ok.grants[0].granted
                    assert await _health(ch, SERVICE_NAME) == health_pb2.HealthCheckResponse.SERVING

                    server.terminate()
                    server.wait(timeout=10)
                    denied = await client.Acquire(_acquire(host, host))
                    for grant in denied.grants:
                        assert not grant.granted
                        assert grant.deny_reason == "backend_unavailable"
                        assert grant.retry_after.ToTimedelta() == timedelta(seconds=1)
                    # (orch_ratelimit_backend_up is process-wide: the suite's other, healthy
                    # ratelimit service in this process may set it back to 1 at any probe, so
                    # the down state is asserted through this service's health below.)
                    for name in (SERVICE_NAME, ENVOY_SERVICE_NAME):
                        status = await _health(ch, name)
                        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
                    with pytest.raises(grpc.aio.AioRpcError) as unavailable:
                        await client.GetBucket(ratelimit_pb2.GetBucketRequest(key=_key(host)))
                    assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE

                    with _redis_server(port):
                        await _wait_redis(port)
                        for _ in range(50):
                            if (
                                await _health(ch, SERVICE_NAME)
                                == health_pb2.HealthCheckResponse.SERVING
                            ):
                                break
                            await asyncio.sleep(0.1)
                        assert (
                            await _health(ch, SERVICE_NAME)
                            == health_pb2.HealthCheckResponse.SERVING
                        )
                        assert rl_metrics.BACKEND_UP._value.get() == 1
                        back = await client.Acquire(_acquire(host))
                        assert back.grants[0].granted
            finally:
                await built.service.stop()


async def test_redis_down_fail_open_grants(database_url: str) -> None:
    settings = _settings(envoy_auth="token", redis_failure="open")
    async with build_app(
        service_config("ratelimit", database_url),
        redis_url=f"redis://127.0.0.1:{_free_port()}/0",
        settings=settings,
    ) as built:
        await built.service.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{built.service.port}") as ch:
                response = await _client(ch).Acquire(_acquire(_host("open")))
                assert response.grants[0].granted
                assert response.grants[0].deny_reason == ""
        finally:
            await built.service.stop()
