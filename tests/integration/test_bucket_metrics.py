"""The ratelimit service's bucket gauges by value (docs/metrics.md, "Rate limiting").

A ratelimit service runs in-process on a database of its own (so its leader-only snapshot
sees exactly this test's tenants) and a Redis key prefix of its own. Three buckets are put
in known states through the real bucket store — one configured at 4/s, one paused by an
upstream 429, one whose circuit 20 failures opened — and the exported gauges must show
exactly those states; a cap of one bucket keeps the open circuit, the most alarming.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from orchestrator_ratelimit import RatelimitSettings, build_app
from orchestrator_redis import BucketConfig, BucketKey
from tests.conftest import REDIS_URL, migrated_database, service_config

pytestmark = pytest.mark.integration

WAIT_S = 60.0


@pytest.fixture(scope="module")
def own_database(admin_url: str) -> Iterator[str]:
    with migrated_database(admin_url, "orch_bucketmetrics", ("acme", "globex")) as url:
        yield url


def gauge(name: str, tenant: str, host: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"tenant": tenant, "host": host})


def own_omitted(app) -> int:
    latest = app.bucket_gauges.latest
    assert latest is not None
    return int(latest[0].omitted)


async def eventually(check, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    delay = 0.02
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_S} s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def test_circuit_state_and_rates_per_bucket(own_database: str) -> None:
    prefix = f"orch:bucketmetrics:{uuid.uuid4().hex}:"
    settings = RatelimitSettings(
        key_prefix=prefix, envoy_port=0, jitter_s=0.0, bucket_metrics_interval_s=0.1
    )
    limited, throttled, broken = (f"{n}-{uuid.uuid4().hex[:6]}.example" for n in "ltb")
    async with build_app(
        service_config("ratelimit", own_database), redis_url=REDIS_URL, settings=settings
    ) as app:
        await app.service.start()
        try:
            store = app.backend.store
            now = time.time()
            await store.configure(BucketKey("acme", limited), BucketConfig(10, 4), now=now)
            await store.acquire([(BucketKey("globex", throttled), 1)], now=now)
            await store.throttle(
                BucketKey("globex", throttled), retry_after_s=3600, now=now, reason="429"
            )
            await store.record_results(BucketKey("acme", broken), successes=0, failures=20, now=now)
            taken = app.bucket_gauges.snapshots

            await eventually(
                lambda: app.bucket_gauges.snapshots > taken + 1, "two fresh bucket snapshots"
            )
            assert app.bucket_gauges.is_leader
            rate = "orch_ratelimit_bucket_rate_per_second"
            assert gauge(rate, "acme", limited) == 4.0
            assert gauge("orch_ratelimit_bucket_configured_rate_per_second", "acme", limited) == 4
            assert gauge("orch_ratelimit_circuit_state", "acme", limited) == 0
            assert gauge("orch_ratelimit_bucket_paused", "acme", limited) == 0
            assert gauge("orch_ratelimit_bucket_paused", "globex", throttled) == 1
            assert gauge("orch_ratelimit_circuit_state", "globex", throttled) == 0
            assert gauge("orch_ratelimit_circuit_state", "acme", broken) == 2
            # This service's own snapshot: the registry of this test process also holds the
            # snapshots of the session's other ratelimit services (one unlabelled sample each).
            assert own_omitted(app) == 0

            # The cap keeps the most alarming bucket: the open circuit.
            app.bucket_gauges._max_buckets = 1
            taken = app.bucket_gauges.snapshots
            await eventually(lambda: app.bucket_gauges.snapshots > taken + 1, "a capped snapshot")
            assert gauge("orch_ratelimit_circuit_state", "acme", broken) == 2
            assert gauge(rate, "acme", limited) is None
            assert gauge(rate, "globex", throttled) is None
            assert own_omitted(app) == 2
        finally:
            await app.service.stop()
    # A stopped service withdraws its series.
    assert gauge("orch_ratelimit_circuit_state", "acme", broken) is None
