"""Rate limiting on the leasing hot path: real PostgreSQL, real Redis, real gRPC.

The module gets its own migrated database and scheduler; every test builds its own leases
service in-process (``build_app``) with the settings or bucket store it needs, a random
Redis key prefix, and its own job type and source hosts, so tests never share buckets or
jobs. Time is real: buckets are small enough that pacing shows within seconds.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
import redis.asyncio
from google.protobuf import duration_pb2
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from orchestrator_grpckit import ServiceConfig, mint_dev_token
from orchestrator_leases import LeasesApp, LeaseSettings, build_app
from orchestrator_leases import _metrics as lease_metrics
from orchestrator_redis import NON_BINDING, BucketConfig, BucketKey, BucketStore, CircuitPolicy
from stella.orchestrator.v1 import (
    common_pb2,
    leases_pb2,
    leases_pb2_grpc,
    resources_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from tests.conftest import REDIS_URL, migrated_database

pytestmark = pytest.mark.integration

SECRET = "leases-rl-test-secret-0123456789abcdef01"
TENANT = "acme"
# A throttle pause and an open circuit long enough that a loaded machine still acts well
# inside them (the assertions leave a second or more of slack on each side).
PAUSE_S = 8.0
OPEN_S = 8.0


def _config(url: str) -> ServiceConfig:
    return ServiceConfig(
        service_name="leases",
        grpc_port=0,
        metrics_port=None,
        database_url=url,
        auth_hs256_secret=SECRET,
        shutdown_grace_s=0.5,
        redis_url=REDIS_URL,
    )


def _md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _job_type() -> str:
    return f"t{uuid.uuid4().hex[:12]}.rl"


def _host(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}.example.org"


@pytest.fixture(scope="module")
def rl_db(admin_url: str):
    with migrated_database(admin_url, "orch_leases_rl", (TENANT,)) as url:
        yield url


@pytest.fixture(scope="module")
async def sched_target(rl_db: str) -> AsyncIterator[str]:
    from orchestrator_scheduler import build_service

    async with build_service(_config(rl_db)) as service:
        await service.start()
        try:
            yield f"127.0.0.1:{service.port}"
        finally:
            await service.stop()


@pytest.fixture
async def sched(sched_target: str) -> AsyncIterator[scheduler_pb2_grpc.SchedulerServiceStub]:
    async with grpc.aio.insecure_channel(sched_target) as ch:
        yield scheduler_pb2_grpc.SchedulerServiceStub(ch)


@pytest.fixture
def db(rl_db: str):
    with psycopg.connect(rl_db, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"orch:rltest:{uuid.uuid4().hex}:"


def _settings(**overrides: object) -> LeaseSettings:
    values: dict[str, object] = {
        "lease_ttl_s": 30,
        "claim_batch": 100,
        "watchdog_interval_s": 0.5,
        "completer_flush_ms": 2,
        "ratelimit": True,
        "ratelimit_jitter_s": 0.0,
    }
    values.update(overrides)
    return LeaseSettings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def _leases(
    url: str, settings: LeaseSettings, store: BucketStore | None = None
) -> AsyncIterator[LeasesApp]:
    async with build_app(
        _config(url),
        settings=settings,
        watchdog_lock_key=random.randrange(1, 2**62),
        bucket_store=store,
    ) as app:
        await app.service.start()
        await asyncio.wait_for(app.listener.connected.wait(), 5)
        try:
            yield app
        finally:
            await app.service.stop()


def _source(db, host: str, *, paused: bool = False) -> str:
    source_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO orchestrator.sources (id, tenant, name, source_type, host, paused,"
        " created_at, updated_at) VALUES (%s, %s, %s, 'http', %s, %s, now(), now())",
        (source_id, TENANT, f"src-{source_id[:8]}", host, paused),
    )
    return source_id


async def _submit(sched, job_type: str, n: int, source_id: str = "", attempts: int = 5) -> list:
    policy = common_pb2.RetryPolicy(
        max_attempts=attempts,
        initial_backoff=duration_pb2.Duration(nanos=100_000_000),
        max_backoff=duration_pb2.Duration(seconds=1),
        backoff_multiplier=1.0,
    )
    reply = await sched.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[
                resources_pb2.JobSpec(job_type=job_type, source_id=source_id, retry_policy=policy)
                for _ in range(n)
            ]
        ),
        metadata=_md(mint_dev_token(SECRET, "tester", [TENANT], ("orch:read", "orch:operate"))),
    )
    return [j.id for j in reply.jobs]


def _states(db, job_ids) -> list[tuple]:
    return db.execute(
        "SELECT state, attempt, not_before, reason FROM orchestrator.jobs WHERE id = ANY(%s)",
        ([str(i) for i in job_ids],),
    ).fetchall()


def _lease_times(db, job_ids) -> list[datetime]:
    """When each lease of these jobs was taken, from the ledger's ``job.leased`` events: the
    claim's own ``now``, the instant admission (buckets, blackouts) decided on."""
    rows = db.execute(
        "SELECT occurred_at FROM orchestrator.events WHERE type = 'job.leased'"
        " AND job_id = ANY(%s) ORDER BY occurred_at",
        ([str(i) for i in job_ids],),
    ).fetchall()
    return [r[0] for r in rows]


async def _poll(check, what: str, within_s: float = 30.0):
    """Awaits ``check()`` until it returns something truthy (returned); fails after
    ``within_s`` (a generous bound: it only catches what never happens)."""
    deadline = time.monotonic() + within_s
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} not within {within_s} s"
        await asyncio.sleep(0.05)


Policy = Callable[[leases_pb2.Assignment], "leases_pb2.Failure | None"]


class Worker:
    """A Work stream that records every assignment with its arrival time and answers it at
    once: a completion, or the failure ``policy`` returns."""

    def __init__(self, port: int, job_types: list[str], policy: Policy | None = None) -> None:
        self._channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        token = mint_dev_token(SECRET, "worker", [TENANT], ("orch:work",))
        stub = leases_pb2_grpc.LeaseServiceStub(self._channel)
        self.call = stub.Work(metadata=_md(token))
        self.job_types = job_types
        self.policy = policy
        self.seen: list[tuple[float, leases_pb2.Assignment]] = []
        self.answer = True
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.call.write(
            leases_pb2.WorkRequest(
                hello=leases_pb2.WorkerHello(
                    worker_id="rl-worker", job_types=self.job_types, capacity=100, sdk="test"
                )
            )
        )
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for message in self.call:
            if message.WhichOneof("body") != "assignments":
                continue
            now = time.monotonic()
            batch = leases_pb2.WorkerBatch()
            for a in message.assignments.assignments:
                self.seen.append((now, a))
                if not self.answer:
                    continue
                failure = self.policy(a) if self.policy else None
                if failure is None:
                    batch.completions.append(
                        leases_pb2.Completion(job_id=a.job_id, lease_id=a.lease_id)
                    )
                else:
                    batch.failures.append(failure)
            if batch.completions or batch.failures:
                await self.call.write(leases_pb2.WorkRequest(batch=batch))

    def leased(self, job_ids=None) -> list[tuple[float, leases_pb2.Assignment]]:
        wanted = None if job_ids is None else {str(i) for i in job_ids}
        return [(t, a) for t, a in self.seen if wanted is None or a.job_id in wanted]

    async def wait_for(self, n: int, job_ids=None, within_s: float = 30.0) -> None:
        deadline = time.monotonic() + within_s
        while len(self.leased(job_ids)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.leased(job_ids))} of {n} leased in {within_s} s")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self.call.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._channel.close()


@asynccontextmanager
async def _worker(app: LeasesApp, job_type: str, policy: Policy | None = None):
    worker = Worker(app.service.port, [job_type], policy)
    await worker.start()
    try:
        yield worker
    finally:
        await worker.close()


def _fail(a: leases_pb2.Assignment, error_class: int, retry_after_s: float | None):
    error = common_pb2.JobError(error_class=error_class, message="upstream said no", retryable=True)
    if retry_after_s is not None:
        error.retry_after.FromTimedelta(timedelta(seconds=retry_after_s))
    return leases_pb2.Failure(job_id=a.job_id, lease_id=a.lease_id, error=error)


# ---------------------------------------------------------------------------- tests


async def test_bucket_paces_leasing(rl_db, sched, db, redis_client, prefix) -> None:
    store = BucketStore(redis_client, prefix=prefix)
    host = _host("paced")
    await store.configure(BucketKey(TENANT, host), BucketConfig(5, 5), now=time.time())
    source = _source(db, host)
    job_type = _job_type()
    async with _leases(rl_db, _settings(), store) as app, _worker(app, job_type) as worker:
        ids = await _submit(sched, job_type, 40, source)
        await worker.wait_for(5)
        await asyncio.sleep(0.3)
        first = worker.leased()[0][0]
        leased = len(worker.leased())
        # the burst (5) plus what the rate refilled since the first lease, however long the
        # test took to look
        assert leased <= 5 + 5 * (time.monotonic() - first) + 1
        waiting = [r for r in _states(db, ids) if r[0] == "ready"]
        assert len(waiting) >= 40 - leased - 5  # what the bucket held back is still ready
        assert all(r[1] == 0 for r in waiting)  # no attempt spent on a deferral
        (undeferred,) = db.execute(
            "SELECT count(*) FROM orchestrator.jobs WHERE id = ANY(%s) AND state = 'ready'"
            " AND not_before <= created_at",
            ([str(i) for i in ids],),
        ).fetchone()
        assert undeferred == 0  # each held-back job was given a time to come back, not spun on
        await worker.wait_for(40)
    times = sorted(t for t, _ in worker.leased())
    start = times[0]
    for i, t in enumerate(times):
        # never more than the burst plus what the rate refilled (small slack for clocks)
        assert i + 1 <= 5 + 5 * (t - start) + 1.5, (i, t - start)
    elapsed = times[-1] - start
    assert elapsed >= 35 / 5 * 0.8  # the bucket's rate, not faster (slower is the machine)


async def test_429_pauses_host_and_lowers_rate(rl_db, sched, db, redis_client, prefix) -> None:
    store = BucketStore(redis_client, prefix=prefix)
    slow, fast = _host("throttled"), _host("other")
    for host in (slow, fast):
        await store.configure(BucketKey(TENANT, host), BucketConfig(100, 100), now=time.time())
    slow_src, fast_src = _source(db, slow), _source(db, fast)
    job_type = _job_type()
    first: set[str] = set()

    def policy(a: leases_pb2.Assignment):
        if a.job_id in first and a.attempt == 1:
            return _fail(a, common_pb2.ERROR_CLASS_HTTP_429, PAUSE_S)
        return None

    async with _leases(rl_db, _settings(), store) as app, _worker(app, job_type, policy) as w:
        (probe,) = await _submit(sched, job_type, 1, slow_src)
        first.add(probe)
        await w.wait_for(1, [probe])
        key = BucketKey(TENANT, slow)

        async def paused():
            state = await store.state(key, now=time.time())
            return state if state.paused_until is not None else None

        state = await _poll(paused, "the 429's pause")
        paused_until = datetime.fromtimestamp(state.paused_until, UTC)
        assert state.effective_refill_per_s == pytest.approx(50)  # multiplicative decrease
        slow_ids = await _submit(sched, job_type, 5, slow_src)
        fast_ids = await _submit(sched, job_type, 5, fast_src)
        await w.wait_for(5, fast_ids)
        # the other host kept flowing while this one was paused ...
        assert max(_lease_times(db, fast_ids)) < paused_until
        await w.wait_for(6, [*slow_ids, probe], within_s=PAUSE_S + 30)  # probe retried + 5 new
        # ... and the paused host leased nothing until its pause ended (the claims' own
        # instants, so it holds however late the test looks)
        assert min(_lease_times(db, slow_ids)) >= paused_until
        assert _lease_times(db, [probe])[1] >= paused_until
        # A few successes, far below 50/s, do not raise the rate: probing upward needs a
        # bucket that binds (issue 15; it used to recover additively on any success).
        extra = await _submit(sched, job_type, 1, slow_src)
        await w.wait_for(1, extra)
        assert app.limiter is not None
        await app.limiter.drain()  # its success reported, whatever the feedback loop's pace
        state = await store.state(key, now=time.time())
        assert state.effective_refill_per_s == pytest.approx(50)
    rows = db.execute(
        "SELECT origin, host, paused_until FROM orchestrator.throttles WHERE host = %s", (slow,)
    ).fetchall()
    assert [r[0] for r in rows] == ["upstream_429"]
    events = db.execute(
        "SELECT count(*) FROM orchestrator.events WHERE type = 'throttle.changed'"
        " AND data->>'host' = %s",
        (slow,),
    ).fetchone()
    assert events is not None
    assert events[0] == 1


async def test_circuit_breaker_opens_probes_and_closes(
    rl_db, sched, db, redis_client, prefix
) -> None:
    circuit = CircuitPolicy(failure_ratio=0.5, min_volume=4, window_s=30, open_s=OPEN_S)
    store = BucketStore(redis_client, prefix=prefix, circuit=circuit)
    host = _host("breaker")
    key = BucketKey(TENANT, host)
    await store.configure(key, BucketConfig(100, 100), now=time.time())
    source = _source(db, host)
    job_type = _job_type()
    failing: set[str] = set()

    def policy(a: leases_pb2.Assignment):
        if a.job_id in failing:
            return _fail(a, common_pb2.ERROR_CLASS_HTTP_5XX, 0.2)
        return None

    async with _leases(rl_db, _settings(), store) as app, _worker(app, job_type, policy) as w:
        bad = await _submit(sched, job_type, 4, source, attempts=1)
        failing.update(bad)
        await w.wait_for(4, bad)
        opened_at = time.monotonic()

        async def opened():
            return (await store.state(key, now=time.time())).circuit == "open"

        await _poll(opened, "the circuit opening", within_s=3.0)
        good = await _submit(sched, job_type, 3, source)
        await asyncio.sleep(1.5)
        assert not w.leased(good)  # open: no leases for this host
        await w.wait_for(3, good, within_s=OPEN_S + 20)  # half-open probe, success, closed
        leased = sorted(t for t, _ in w.leased(good))
        assert leased[0] - opened_at >= OPEN_S - 1.0  # less the time it took to see it open
        closed = await store.state(key, now=time.time())
        assert closed.circuit == "closed"


async def test_paused_source_is_not_leased_until_unpaused(rl_db, sched, db, prefix) -> None:
    host = _host("paused")
    source = _source(db, host, paused=True)
    job_type = _job_type()
    async with (
        _leases(rl_db, _settings(ratelimit_key_prefix=prefix)) as app,
        _worker(app, job_type) as w,
    ):
        ids = await _submit(sched, job_type, 3, source)
        await asyncio.sleep(1.2)
        assert not w.leased()
        assert {r[0] for r in _states(db, ids)} == {"ready"}
        db.execute("UPDATE orchestrator.sources SET paused = false WHERE id = %s", (source,))
        await w.wait_for(3)


async def test_blackout_defers_until_window_end(rl_db, sched, db, prefix) -> None:
    host = _host("blackout")
    source = _source(db, host)
    job_type = _job_type()
    now = datetime.now(UTC)
    end = now + timedelta(seconds=2)
    db.execute(
        "INSERT INTO orchestrator.blackouts (id, tenant, source_id, start_at, end_at,"
        " created_at) VALUES (%s, %s, %s, %s, %s, now())",
        (str(uuid.uuid4()), TENANT, source, now - timedelta(minutes=1), end),
    )
    # A weekly window that covers every instant of the week, on another source.
    other = _source(db, _host("weekly"))
    db.execute(
        "INSERT INTO orchestrator.blackouts (id, tenant, source_id, start_at, end_at,"
        " recurrence, created_at) VALUES (%s, %s, %s, %s, %s, %s, now())",
        (
            str(uuid.uuid4()),
            TENANT,
            other,
            now - timedelta(days=30),
            now + timedelta(seconds=30),
            psycopg.types.json.Jsonb(
                {
                    "weekly": {
                        "days": [1, 2, 3, 4, 5, 6, 7],
                        "start_minute_utc": 0,
                        "duration_s": 86400,
                    }
                }
            ),
        ),
    )
    async with (
        _leases(rl_db, _settings(ratelimit_key_prefix=prefix)) as app,
        _worker(app, job_type) as w,
    ):
        ids = await _submit(sched, job_type, 3, source)
        weekly_ids = await _submit(sched, job_type, 1, other)
        free = await _submit(sched, job_type, 2)  # no source: no blackout
        await w.wait_for(2, free)
        # deferred to the window's end (they keep that not_before when leased after it) ...
        deferred = _states(db, ids)
        assert all(abs((r[2] - end).total_seconds()) < 0.01 for r in deferred)
        await w.wait_for(3, ids)
        # ... and leased only once it had passed (the claims' own instants)
        assert min(_lease_times(db, ids)) >= end
        assert not w.leased(weekly_ids)
        weekly = _states(db, weekly_ids)[0]
        assert weekly[0] == "ready"
        assert weekly[2] > datetime.now(UTC)


async def test_redis_down_fails_closed_then_resumes(rl_db, sched, db, redis_client, prefix) -> None:
    dead = redis.asyncio.Redis(
        host="127.0.0.1",
        port=1,  # nothing listens there
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
        retry=Retry(NoBackoff(), 0),
    )
    job_type = _job_type()
    try:
        store = BucketStore(dead, prefix=prefix)
        async with (
            _leases(rl_db, _settings(ratelimit_failure="closed"), store) as app,
            _worker(app, job_type) as w,
        ):
            assert app.limiter is not None
            ids = await _submit(sched, job_type, 3)
            await asyncio.sleep(1.5)
            assert not w.leased()
            rows = _states(db, ids)
            assert {(r[0], r[1]) for r in rows} == {("ready", 0)}  # nothing lost or spent
            assert lease_metrics.RATELIMIT_BACKEND_UP._value.get() == 0
            app.limiter.store = BucketStore(redis_client, prefix=prefix)  # Redis is back
            await w.wait_for(3)
            assert lease_metrics.RATELIMIT_BACKEND_UP._value.get() == 1
    finally:
        await dead.aclose()


async def test_off_leases_without_limits(rl_db, sched, db, redis_client, prefix) -> None:
    store = BucketStore(redis_client, prefix=prefix)
    host = _host("unlimited")
    await store.configure(BucketKey(TENANT, host), BucketConfig(1, 0.1), now=time.time())
    source = _source(db, host, paused=False)
    job_type = _job_type()
    async with (
        _leases(rl_db, _settings(ratelimit=False), store) as app,
        _worker(app, job_type) as w,
    ):
        assert app.limiter is None
        await _submit(sched, job_type, 10, source)
        # the bucket (1 burst, 0.1/s) would let 4 through in 30 s
        await w.wait_for(10, within_s=30)


async def test_unconfigured_buckets_do_not_bind(rl_db, sched, db, redis_client, prefix) -> None:
    # The store default is NON_BINDING: 300 jobs of an unconfigured host (and 300 without a
    # source) lease in one go; a binding default (10 burst) would hold most of them back.
    assert LeaseSettings().ratelimit is True
    assert LeaseSettings.from_env({}).ratelimit_default_bucket == NON_BINDING
    store = BucketStore(redis_client, prefix=prefix, default=NON_BINDING)
    source = _source(db, _host("unconfigured"))
    job_type = _job_type()
    async with _leases(rl_db, _settings(), store) as app, _worker(app, job_type) as w:
        ids = [*await _submit(sched, job_type, 300, source), *await _submit(sched, job_type, 300)]
        await w.wait_for(600)

        async def all_succeeded():
            return {r[0] for r in _states(db, ids)} == {"succeeded"}

        await _poll(all_succeeded, "the last completions")  # may still be in flight
    assert all(r[1] == 1 for r in _states(db, ids))  # every job leased once, none deferred


async def test_sourceless_429_delays_only_that_job(rl_db, sched, db, redis_client, prefix) -> None:
    # A 429 from a job without a source names no upstream: its retry honours the
    # Retry-After, but the tenant's other source-less jobs keep flowing.
    store = BucketStore(redis_client, prefix=prefix, default=NON_BINDING)
    job_type = _job_type()
    throttled: set[str] = set()

    def policy(a: leases_pb2.Assignment):
        if a.job_id in throttled:
            return _fail(a, common_pb2.ERROR_CLASS_HTTP_429, 60.0)
        return None

    async with _leases(rl_db, _settings(), store) as app, _worker(app, job_type, policy) as w:
        (probe,) = await _submit(sched, job_type, 1)
        throttled.add(probe)
        await w.wait_for(1, [probe])

        async def retry_recorded():
            return _states(db, [probe])[0][0] == "ready"

        await _poll(retry_recorded, "the probe's failure")
        assert app.limiter is not None
        await app.limiter.drain()  # its feedback applied before the others are submitted
        others = await _submit(sched, job_type, 20)
        await w.wait_for(20, others)  # well inside the probe's 60 s Retry-After
        assert len(w.leased([probe])) == 1  # the throttled job waits for its Retry-After
    state = await store.state(BucketKey(TENANT, ""), now=time.time())
    assert state.paused_until is None
    row = db.execute(
        "SELECT state, not_before > now() + interval '50 seconds' FROM orchestrator.jobs"
        " WHERE id = %s",
        (probe,),
    ).fetchone()
    assert row == ("ready", True)


async def test_max_active_quota_paces_the_stream_by_completions(
    rl_db, sched, db, redis_client, prefix
) -> None:
    # A job-type quota of 2 active leases: the worker never holds more than 2 of its jobs,
    # and each completion makes room at once (the dispatcher claims again when a lease
    # ends while a cap is full; it does not wait for the 1-2 s fallback poll).
    store = BucketStore(redis_client, prefix=prefix, default=NON_BINDING)
    job_type = _job_type()
    db.execute(
        "INSERT INTO orchestrator.quotas (id, tenant, job_type, max_active, created_at,"
        " updated_at) VALUES (gen_random_uuid(), %s, %s, 2, now(), now())",
        (TENANT, job_type),
    )
    held: list[int] = []

    async def watch() -> None:
        while True:
            (n,) = db.execute(
                "SELECT count(*) FROM orchestrator.jobs WHERE job_type = %s AND state = 'leased'",
                (job_type,),
            ).fetchone()
            held.append(n)
            await asyncio.sleep(0.005)

    async with _leases(rl_db, _settings(), store) as app, _worker(app, job_type) as w:
        watcher = asyncio.create_task(watch())
        ids = await _submit(sched, job_type, 20)
        start = time.monotonic()
        await w.wait_for(20)
        elapsed = time.monotonic() - start
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert max(held) <= 2
    # Waiting for the 1-2 s fallback poll after each of the 9 completions that free a slot
    # would take 9 s at least; claiming on completion takes a fraction of that, with room
    # for a loaded machine.
    assert elapsed < 8.0, f"20 jobs at 2 at a time took {elapsed:.1f} s"
    assert all(r[1] == 1 for r in _states(db, ids))  # none deferred or retried


class _CountingStore(BucketStore):
    """The real store, counting its acquire round trips (a spy, not a stand-in)."""

    acquires = 0

    async def acquire(self, requests, *, now, whole=None):  # type: ignore[no-untyped-def]
        self.acquires += 1
        return await super().acquire(requests, now=now, whole=whole)


async def test_held_tokens_skip_redis_for_roomy_buckets_only(
    rl_db, db, redis_client, prefix
) -> None:
    from orchestrator_core import FrozenClock
    from orchestrator_leases._ratelimit import PREFETCH, LeaseLimiter
    from orchestrator_pg import Database, LeaseLedger, TxContext

    # One frozen instant for the limiter, the claims and the buckets: held tokens cannot
    # expire and buckets cannot refill between claims, however slow the machine. The jobs
    # are due a second before it by construction (not by the database's now() at insert,
    # which a slow machine could put after it).
    at = datetime.now(UTC)
    due = at - timedelta(seconds=1)

    store = _CountingStore(redis_client, prefix=prefix, default=NON_BINDING)
    tight = _host("tight")
    await store.configure(BucketKey(TENANT, tight), BucketConfig(5, 1), now=at.timestamp())
    tight_src = _source(db, tight)
    roomy_type, tight_type = _job_type(), _job_type()
    for job_type, source_id in ((roomy_type, None), (tight_type, tight_src)):
        db.execute(
            "INSERT INTO orchestrator.jobs (id, tenant, job_type, state, reason, payload_digest,"
            " max_attempts, initial_backoff_s, max_backoff_s, backoff_multiplier, not_before,"
            " created_at, updated_at, source_id)"
            " SELECT gen_random_uuid(), %s, %s, 'ready', 'submitted',"
            " 'sha256:' || repeat('0', 64), 3, 1, 10, 2, %s, %s, %s, %s"
            " FROM generate_series(1, 600)",
            (TENANT, job_type, due, due, due, source_id),
        )
    async with Database(rl_db) as database:
        ledger = LeaseLedger(database)
        limiter = LeaseLimiter(store, ledger, jitter_s=0.0, clock=FrozenClock(at))

        async def claims(job_type: str, n: int) -> int:
            leased = 0
            for _ in range(n):
                reserved = limiter.reserve()
                result = await ledger.job_claim_admitted(
                    TxContext(tenant=TENANT, actor_subject="held-test", now=at),
                    worker_ids=["w"] * 50,
                    job_types=[job_type],
                    tenants=[TENANT],
                    admit=limiter.admit,
                    allowance=reserved,
                )
                limiter.release(reserved, result.spent)
                leased += len(result.rows)
            return leased

        # Unconfigured key: the first grant shows it roomy, the second also fetches PREFETCH
        # tokens, and the next PREFETCH / 50 claims spend them without calling Redis.
        assert await claims(roomy_type, 10) == 500
        assert store.acquires == 2
        # A binding bucket (5 burst, 1/s) is asked exactly what each claim needs: nothing
        # is hoarded and leasing never runs ahead of it (no time passes: its burst, no more).
        before = store.acquires
        assert await claims(tight_type, 3) == 5
        assert store.acquires - before >= 1
    held = limiter.reserve()
    assert held.get((TENANT, tight), 0) == 0
    assert 0 < held.get((TENANT, ""), 0) <= PREFETCH
