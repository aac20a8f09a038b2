"""Tokens, bucket configuration, throttle reports and overrides, paging, tenancy and scopes
of the ratelimit service over real gRPC.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest

from orchestrator_grpckit import mint_dev_token
from orchestrator_ratelimit import build_app
from stella.orchestrator.v1 import common_pb2, ratelimit_pb2, resources_pb2
from tests.conftest import DEV_SECRET, REDIS_URL, service_config
from tests.integration.ratelimit._support import (
    DEFAULTS_TENANT,
    OPERATOR,
    Client,
    _acquire,
    _client,
    _configure,
    _dur,
    _host,
    _key,
    _settings,
    _ts,
)

pytestmark = pytest.mark.integration


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
