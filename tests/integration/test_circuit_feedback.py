"""Which worker failures trip a host's circuit breaker: 5xx and timeouts do, a 429 never does
(it is the upstream asking us to slow down: the bucket pauses and lowers its refill instead).

Feedback is applied with :meth:`LeaseLimiter.drain` on an injected clock, against real Redis
and PostgreSQL, so nothing here depends on timing."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio

from orchestrator_core import FrozenClock
from orchestrator_leases._actor import Actor
from orchestrator_leases._ratelimit import LeaseLimiter
from orchestrator_pg import Database, Failure, LeaseLedger
from orchestrator_redis import BucketConfig, BucketKey, BucketStore, CircuitPolicy
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
ACTOR = Actor("acme", "worker-circuit", ("orch:work",), ("acme",))


@pytest.fixture
async def store() -> AsyncIterator[BucketStore]:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    prefix = f"orch:circuittest:{uuid.uuid4().hex}:"
    circuit = CircuitPolicy(failure_ratio=0.5, min_volume=4, window_s=30, open_s=15)
    try:
        yield BucketStore(client, prefix=prefix, circuit=circuit)
    finally:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()


async def _jobs_on_new_host(scheduler, db, n: int) -> tuple[str, list[uuid.UUID]]:
    host = f"feed-{uuid.uuid4().hex[:8]}.example.org"
    source_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO orchestrator.sources (id, tenant, name, source_type, host,"
        " created_at, updated_at) VALUES (%s, 'acme', %s, 'http', %s, now(), now())",
        (source_id, f"src-{source_id[:8]}", host),
    )
    reply = await scheduler.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[
                resources_pb2.JobSpec(job_type="circuit.probe", source_id=source_id)
                for _ in range(n)
            ]
        )
    )
    return host, [uuid.UUID(j.id) for j in reply.jobs]


@pytest.mark.parametrize(
    ("error_class", "circuit", "throttled"),
    [("http_429", "closed", True), ("http_5xx", "open", True), ("timeout", "open", False)],
)
async def test_only_upstream_failures_open_the_circuit(
    scheduler, db, database_url, store, error_class, circuit, throttled
) -> None:
    rng = random.Random()
    host, job_ids = await _jobs_on_new_host(scheduler, db, rng.randint(6, 20))
    key = BucketKey("acme", host)
    await store.configure(key, BucketConfig(rng.choice([5, 50, 100]), 100), now=T0.timestamp())
    async with Database(database_url) as database:
        limiter = LeaseLimiter(
            store, LeaseLedger(database), clock=FrozenClock(T0), rng=random.Random(7)
        )
        # a burst: every request of the host fails the same way, in one or several drains
        cut = rng.randint(1, len(job_ids))
        for part in (job_ids[:cut], job_ids[cut:]):
            failures = [
                Failure(job_id, uuid.uuid4(), error_class, "upstream said no", True, 2.0)
                for job_id in part
            ]
            limiter.observe(ACTOR, [], failures)
            await limiter.drain()
    state = await store.state(key, now=T0.timestamp())
    assert state.circuit == circuit
    assert (state.paused_until is not None) is throttled
    if throttled:
        assert state.effective_refill_per_s < state.refill_per_s  # slowed down instead
