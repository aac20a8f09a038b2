"""The leases service over real gRPC channels against a real PostgreSQL.

The module gets its own migrated database (the watchdog of the service under test expires
every overdue lease in its database, which must not reach the leases of other test files),
its own scheduler to submit jobs, and a leases service on a free port. Each test uses its own
job type, so tests never see each other's jobs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import psycopg
import pytest
from google.protobuf import duration_pb2, struct_pb2

from orchestrator_grpckit import ServiceConfig, error_details, mint_dev_token
from orchestrator_leases import LeaseSettings, build_app
from orchestrator_leases._watchdog import Watchdog
from orchestrator_pg import Database, LeaseLedger
from stella.orchestrator.v1 import (
    common_pb2,
    leases_pb2,
    leases_pb2_grpc,
    resources_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from tests.conftest import migrated_database

pytestmark = pytest.mark.integration

SECRET = "leases-test-secret-0123456789abcdef0123"
WORK = ("orch:work",)
OPERATE = ("orch:read", "orch:operate")
TEST_LOCK_KEY = 0x5354_4F52_4348_7E57
SHORT_LOCK_KEY = 0x5354_4F52_4348_7E58


def _config(url: str) -> ServiceConfig:
    return ServiceConfig(
        service_name="leases",
        grpc_port=0,
        metrics_port=None,
        database_url=url,
        auth_hs256_secret=SECRET,
        shutdown_grace_s=0.5,
    )


def _md(token: str, tenant: str | None = None) -> tuple[tuple[str, str], ...]:
    md = (("authorization", f"Bearer {token}"),)
    return (*md, ("x-stella-tenant", tenant)) if tenant else md


def _job_type() -> str:
    return f"t{uuid.uuid4().hex[:12]}.work"


@pytest.fixture(scope="module")
def lease_db(admin_url: str):
    with migrated_database(admin_url, "orch_leases", ("acme", "globex")) as url:
        yield url


@pytest.fixture(scope="module")
async def sched_target(lease_db: str) -> AsyncIterator[str]:
    from orchestrator_scheduler import build_service

    config = ServiceConfig(
        service_name="scheduler",
        grpc_port=0,
        metrics_port=None,
        database_url=lease_db,
        auth_hs256_secret=SECRET,
        shutdown_grace_s=0.5,
    )
    async with build_service(config) as service:
        await service.start()
        try:
            yield f"127.0.0.1:{service.port}"
        finally:
            await service.stop()


@pytest.fixture(scope="module")
async def app(lease_db: str):
    settings = LeaseSettings(
        lease_ttl_s=30, claim_batch=100, watchdog_interval_s=0.2, completer_flush_ms=2
    )
    async with build_app(
        _config(lease_db), settings=settings, watchdog_lock_key=TEST_LOCK_KEY
    ) as a:
        await a.service.start()
        await asyncio.wait_for(a.listener.connected.wait(), 5)
        try:
            yield a
        finally:
            await a.service.stop()


@pytest.fixture
async def leases_channel(app) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.service.port}") as ch:
        yield ch


@pytest.fixture
async def sched(sched_target: str) -> AsyncIterator[scheduler_pb2_grpc.SchedulerServiceStub]:
    async with grpc.aio.insecure_channel(sched_target) as ch:
        yield scheduler_pb2_grpc.SchedulerServiceStub(ch)


@pytest.fixture
def db(lease_db: str):
    with psycopg.connect(lease_db, autocommit=True) as conn:
        yield conn


def _token(tenants=("acme",), scopes=WORK, job_types=()) -> str:
    return mint_dev_token(SECRET, "worker-fleet", list(tenants), scopes, list(job_types))


async def _submit(sched, job_type: str, n: int = 1, tenant: str = "acme", **spec) -> list:
    reply = await sched.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[resources_pb2.JobSpec(job_type=job_type, **spec) for _ in range(n)]
        ),
        metadata=_md(mint_dev_token(SECRET, "tester", [tenant], OPERATE)),
    )
    return list(reply.jobs)


def _row(db, job_id) -> dict:
    cur = db.execute("SELECT * FROM orchestrator.jobs WHERE id = %s", (str(job_id),))
    names = [c.name for c in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


class StreamWorker:
    """A Work stream driven by the test: writes requests, collects responses in a queue."""

    def __init__(self, channel: grpc.aio.Channel, token: str, tenant: str | None = None) -> None:
        stub = leases_pb2_grpc.LeaseServiceStub(channel)
        self.call = stub.Work(metadata=_md(token, tenant))
        self.inbox: asyncio.Queue[leases_pb2.WorkResponse | None] = asyncio.Queue()
        self.error: grpc.aio.AioRpcError | None = None
        self.assignments: list[leases_pb2.Assignment] = []
        self.assignment_messages = 0
        self._pump_task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for message in self.call:
                await self.inbox.put(message)
        except grpc.aio.AioRpcError as exc:
            self.error = exc
        finally:
            await self.inbox.put(None)

    async def send(self, **body) -> None:
        await self.call.write(leases_pb2.WorkRequest(**body))

    async def hello(self, job_types, capacity: int, worker_id: str = "w-1"):
        await self.send(
            hello=leases_pb2.WorkerHello(
                worker_id=worker_id, job_types=job_types, capacity=capacity, sdk="test"
            )
        )
        return (await self.next("welcome")).welcome

    async def next(self, kind: str, within_s: float = 5.0) -> leases_pb2.WorkResponse:
        deadline = time.monotonic() + within_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} message within {within_s} s")
            message = await asyncio.wait_for(self.inbox.get(), remaining)
            if message is None:
                raise AssertionError(f"stream ended while waiting for {kind}: {self.error}")
            body = message.WhichOneof("body")
            if body == "assignments":
                self.assignments += message.assignments.assignments
                self.assignment_messages += 1
            if body == kind:
                return message

    async def collect_assignments(self, n: int, within_s: float = 5.0) -> None:
        while len(self.assignments) < n:
            await self.next("assignments", within_s)

    async def quiet(self, seconds: float) -> None:
        """Drains messages for ``seconds`` (counting assignments)."""
        with pytest.raises(TimeoutError):
            await self.next("never", seconds)

    async def close(self) -> None:
        self.call.cancel()
        await asyncio.gather(self._pump_task, return_exceptions=True)


def _completion(a: leases_pb2.Assignment, lease_id: str | None = None, **result):
    return leases_pb2.Completion(
        job_id=a.job_id, lease_id=lease_id or a.lease_id, result=_struct(result)
    )


def _struct(values: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


# --------------------------------------------------------------------------- the stream


async def test_hello_welcome_and_first_message_rules(leases_channel):
    worker = StreamWorker(leases_channel, _token())
    welcome = await worker.hello([_job_type()], capacity=5)
    assert welcome.session_id
    assert welcome.lease_ttl.ToSeconds() == 30
    assert welcome.heartbeat_interval.ToSeconds() == 10
    assert welcome.max_batch == 500
    await worker.close()

    bad = StreamWorker(leases_channel, _token())
    await bad.send(drain=leases_pb2.WorkerDrain(reason="x"))
    assert await bad.inbox.get() is None
    assert bad.error is not None
    assert bad.error.code() == grpc.StatusCode.INVALID_ARGUMENT

    denied = StreamWorker(leases_channel, _token(scopes=("orch:read",)))
    await denied.send(hello=leases_pb2.WorkerHello(worker_id="w", job_types=["a"], capacity=1))
    assert await denied.inbox.get() is None
    assert denied.error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_token_job_types_limit_the_session(leases_channel):
    worker = StreamWorker(leases_channel, _token(job_types=["only.this"]))
    await worker.send(
        hello=leases_pb2.WorkerHello(worker_id="w", job_types=["other.type"], capacity=1)
    )
    assert await worker.inbox.get() is None
    assert worker.error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_assignments_are_batched_and_never_exceed_capacity(leases_channel, sched, db):
    job_type = _job_type()
    await _submit(sched, job_type, 200)
    worker = StreamWorker(leases_channel, _token())
    await worker.hello([job_type], capacity=50)
    await worker.collect_assignments(50)
    await worker.quiet(0.3)
    assert len(worker.assignments) == 50
    assert worker.assignment_messages < 50 / 2, "assignments should come several per message"
    (leased,) = db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE job_type = %s AND state = 'leased'",
        (job_type,),
    ).fetchone()
    assert leased == 50
    first = worker.assignments[0]
    assert first.attempt == 1
    assert first.tenant == "acme"
    assert first.idempotency_key == f"orch-{first.job_id}"
    assert first.payload_digest.startswith("sha256:")
    assert first.lease_expires_at.ToDatetime(UTC) > datetime.now(UTC)

    # 20 completions free 20 slots; 2 credits free 2 more: 22 new assignments, no more
    done = worker.assignments[:20]
    await worker.send(
        batch=leases_pb2.WorkerBatch(completions=[_completion(a, n=i) for i, a in enumerate(done)])
    )
    results = (await worker.next("results")).results
    assert [(a.ok, a.kind) for a in results.acks] == [(True, leases_pb2.ACK_KIND_COMPLETION)] * 20
    await worker.send(batch=leases_pb2.WorkerBatch(credits=2))
    await worker.collect_assignments(72)
    await worker.quiet(0.3)
    assert len(worker.assignments) == 72
    assert len({a.job_id for a in worker.assignments}) == 72

    # drain: no more assignments even with free slots, results still accepted
    await worker.send(drain=leases_pb2.WorkerDrain(reason="test"))
    await worker.send(
        batch=leases_pb2.WorkerBatch(
            completions=[_completion(a) for a in worker.assignments[20:30]]
        )
    )
    acks = (await worker.next("results")).results.acks
    assert all(a.ok for a in acks)
    await worker.quiet(0.3)
    assert len(worker.assignments) == 72
    await worker.close()


async def test_complete_fail_and_fencing(leases_channel, sched, db):
    job_type = _job_type()
    policy = common_pb2.RetryPolicy(max_attempts=3)
    await _submit(sched, job_type, 4, retry_policy=policy)
    worker = StreamWorker(leases_channel, _token())
    await worker.hello([job_type], capacity=4)
    await worker.collect_assignments(4)
    a, b, c, d = worker.assignments
    before = _row(db, b.job_id)
    stale = str(uuid.uuid4())
    await worker.send(
        batch=leases_pb2.WorkerBatch(
            completions=[_completion(a, rows=1), _completion(b, lease_id=stale, rows=2)],
            failures=[
                leases_pb2.Failure(
                    job_id=c.job_id,
                    lease_id=c.lease_id,
                    error=common_pb2.JobError(
                        error_class=common_pb2.ERROR_CLASS_HTTP_5XX, message="503", retryable=True
                    ),
                ),
                leases_pb2.Failure(
                    job_id=d.job_id,
                    lease_id=d.lease_id,
                    error=common_pb2.JobError(
                        error_class=common_pb2.ERROR_CLASS_SCHEMA_MISMATCH,
                        message="field cvss missing",
                        retryable=False,
                    ),
                ),
            ],
        )
    )
    acks = (await worker.next("results")).results.acks
    assert [(x.job_id, x.ok, x.error_reason, x.kind) for x in acks] == [
        (a.job_id, True, "", leases_pb2.ACK_KIND_COMPLETION),
        (b.job_id, False, "lease_lost", leases_pb2.ACK_KIND_COMPLETION),
        (c.job_id, True, "", leases_pb2.ACK_KIND_FAILURE),
        (d.job_id, True, "", leases_pb2.ACK_KIND_FAILURE),
    ]
    assert _row(db, a.job_id)["result"] == {"rows": 1}
    assert _row(db, b.job_id) == before  # the stale lease changed nothing
    row_c = _row(db, c.job_id)
    assert (row_c["state"], row_c["reason"], row_c["last_error_class"]) == (
        "ready",
        "retry_backoff",
        "http_5xx",
    )
    assert _row(db, d.job_id)["state"] == "dead"
    entries = db.execute(
        "SELECT error_class, last_error, attempts, retryable FROM orchestrator.dead_letter"
        " WHERE job_id = %s",
        (d.job_id,),
    ).fetchall()
    assert entries == [("schema_mismatch", "field cvss missing", 1, False)]
    # unary Complete: same fencing, per-item acks, OK status even when every item is lost
    stub = leases_pb2_grpc.LeaseServiceStub(leases_channel)
    reply = await stub.Complete(
        leases_pb2.CompleteRequest(completions=[_completion(b, lease_id=stale)]),
        metadata=_md(_token()),
    )
    assert [(x.ok, x.error_reason) for x in reply.acks] == [(False, "lease_lost")]
    reply = await stub.Complete(
        leases_pb2.CompleteRequest(completions=[_completion(b, rows=2)]), metadata=_md(_token())
    )
    assert [(x.ok, x.error_reason) for x in reply.acks] == [(True, "")]
    # a malformed id is INVALID_ARGUMENT with a field violation
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Fail(
            leases_pb2.FailRequest(failures=[leases_pb2.Failure(job_id="nope", lease_id=stale)]),
            metadata=_md(_token()),
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await worker.close()


async def test_heartbeat_extends_the_lease_and_answers_cancel(leases_channel, sched, db):
    job_type = _job_type()
    await _submit(sched, job_type, 2)
    worker = StreamWorker(leases_channel, _token())
    await worker.hello([job_type], capacity=2)
    await worker.collect_assignments(2)
    a, b = worker.assignments
    old = _row(db, a.job_id)["lease_expires_at"]
    await asyncio.sleep(0.05)
    await worker.send(
        batch=leases_pb2.WorkerBatch(
            heartbeats=[
                leases_pb2.Heartbeat(
                    job_id=a.job_id,
                    lease_id=a.lease_id,
                    progress=common_pb2.Progress(percent=40, message="page 4/10"),
                )
            ]
        )
    )
    (ack,) = (await worker.next("results")).results.acks
    assert (ack.ok, ack.kind) == (True, leases_pb2.ACK_KIND_HEARTBEAT)
    row = _row(db, a.job_id)
    assert row["lease_expires_at"] > old
    assert ack.lease_expires_at.ToDatetime(UTC) == row["lease_expires_at"]
    assert (row["progress_percent"], row["progress_message"]) == (40, "page 4/10")

    await sched.CancelJob(
        scheduler_pb2.CancelJobRequest(job_id=b.job_id),
        metadata=_md(mint_dev_token(SECRET, "op", ["acme"], OPERATE)),
    )
    await worker.send(
        batch=leases_pb2.WorkerBatch(
            heartbeats=[leases_pb2.Heartbeat(job_id=b.job_id, lease_id=b.lease_id)]
        )
    )
    (ack,) = (await worker.next("results")).results.acks
    assert (ack.ok, ack.error_reason) == (False, "lease_lost")
    cancel = (await worker.next("cancel")).cancel
    assert (list(cancel.job_ids), cancel.reason) == ([b.job_id], "user_canceled")
    # the unary Heartbeat answers the same with cancel_job_ids
    stub = leases_pb2_grpc.LeaseServiceStub(leases_channel)
    reply = await stub.Heartbeat(
        leases_pb2.HeartbeatRequest(
            heartbeats=[
                leases_pb2.Heartbeat(job_id=a.job_id, lease_id=a.lease_id),
                leases_pb2.Heartbeat(job_id=b.job_id, lease_id=b.lease_id),
            ]
        ),
        metadata=_md(_token()),
    )
    assert [x.ok for x in reply.acks] == [True, False]
    assert list(reply.cancel_job_ids) == [b.job_id]
    await worker.close()


async def test_a_dropped_stream_releases_its_leases_at_once(leases_channel, sched, db):
    job_type = _job_type()
    jobs = await _submit(sched, job_type, 3)
    worker = StreamWorker(leases_channel, _token())
    await worker.hello([job_type], capacity=3, worker_id="crashy")
    await worker.collect_assignments(3)
    await worker.close()
    ids = [j.id for j in jobs]
    # A generous bound (a loaded machine); the reason below tells release-on-disconnect from
    # the watchdog's expiry of the leases, whenever it comes.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = [_row(db, i) for i in ids]
        if all(r["state"] == "ready" for r in rows):
            break
        await asyncio.sleep(0.02)
    assert [(r["state"], r["reason"], r["last_error_class"]) for r in rows] == [
        ("ready", "worker_disconnected", "worker_crash")
    ] * 3
    assert all(r["not_before"] <= datetime.now(UTC) for r in rows)
    events = db.execute(
        "SELECT count(*) FROM orchestrator.events WHERE job_type = %s AND reason ="
        " 'worker_disconnected'",
        (job_type,),
    ).fetchone()
    assert events == (3,)
    # and they are claimable again right away
    again = StreamWorker(leases_channel, _token())
    await again.hello([job_type], capacity=3)
    await again.collect_assignments(3)
    assert {a.attempt for a in again.assignments} == {2}
    await again.close()


# --------------------------------------------------------------------------- artifacts


async def test_artifacts_with_completion_and_bad_digest(leases_channel, sched, db):
    job_type = _job_type()
    await _submit(sched, job_type, 2)
    stub = leases_pb2_grpc.LeaseServiceStub(leases_channel)
    md = _md(_token())
    claimed = await stub.Claim(
        leases_pb2.ClaimRequest(worker_id="w", job_types=[job_type], max_jobs=2), metadata=md
    )
    a, b = claimed.assignments
    digest = "sha256:" + "ab" * 32
    # a bad digest is refused as a whole request, nothing recorded
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.RecordArtifacts(
            leases_pb2.RecordArtifactsRequest(
                artifacts=[
                    leases_pb2.ArtifactRecord(
                        job_id=a.job_id, lease_id=a.lease_id, name="x", digest="sha256:XYZ"
                    )
                ]
            ),
            metadata=md,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error_details(info.value)
    assert "artifacts[0].digest" in str(details)
    reply = await stub.RecordArtifacts(
        leases_pb2.RecordArtifactsRequest(
            artifacts=[
                leases_pb2.ArtifactRecord(
                    job_id=b.job_id,
                    lease_id=b.lease_id,
                    name="early.json",
                    media_type="application/json",
                    size_bytes=3,
                    digest=digest,
                    uri="s3://bucket/early.json",
                )
            ]
        ),
        metadata=md,
    )
    assert [(x.ok, x.kind) for x in reply.acks] == [(True, leases_pb2.ACK_KIND_ARTIFACT)]
    completion = _completion(a, rows=3)
    completion.artifacts.append(
        leases_pb2.ArtifactRecord(
            name="advisories.ndjson",
            media_type="application/x-ndjson",
            size_bytes=1234,
            digest=digest,
            uri="s3://bucket/advisories.ndjson",
        )
    )
    reply = await stub.Complete(leases_pb2.CompleteRequest(completions=[completion]), metadata=md)
    assert [x.ok for x in reply.acks] == [True]
    rows = db.execute(
        "SELECT job_id::text, attempt, name, media_type, size_bytes, digest, uri, tenant"
        " FROM orchestrator.artifacts WHERE job_id IN (%s, %s) ORDER BY name",
        (a.job_id, b.job_id),
    ).fetchall()
    assert rows == [
        (a.job_id, 1, "advisories.ndjson", "application/x-ndjson", 1234, digest,
         "s3://bucket/advisories.ndjson", "acme"),
        (b.job_id, 1, "early.json", "application/json", 3, digest, "s3://bucket/early.json",
         "acme"),
    ]  # fmt: skip
    assert _row(db, a.job_id)["state"] == "succeeded"
    # a completion with a bad digest in its artifacts is refused too
    bad = _completion(b)
    bad.artifacts.append(leases_pb2.ArtifactRecord(name="y", digest="md5:00"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Complete(leases_pb2.CompleteRequest(completions=[bad]), metadata=md)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _row(db, b.job_id)["state"] == "leased"
    # on the stream, the same report is acked invalid_argument and the stream goes on
    worker = StreamWorker(leases_channel, _token())
    await worker.hello([job_type], capacity=1)
    await worker.send(batch=leases_pb2.WorkerBatch(completions=[bad]))
    (ack,) = (await worker.next("results")).results.acks
    assert (ack.ok, ack.error_reason) == (False, "invalid_argument")
    await worker.close()


# --------------------------------------------------------------------------- wakeups


async def test_notify_wakes_a_waiting_stream_quickly(leases_channel, sched):
    job_type = _job_type()
    worker = StreamWorker(leases_channel, _token())
    await worker.hello([job_type], capacity=10)
    await worker.quiet(0.3)  # idle: the dispatcher found nothing and waits
    started = time.monotonic()
    await _submit(sched, job_type)
    await worker.collect_assignments(1, within_s=30)
    elapsed = time.monotonic() - started
    # The dispatcher's fallback poll comes 1-2 s after its last claim, so 0.7 s or more after
    # `started`: anything sooner was the NOTIFY (0.65 s leaves a loaded machine room).
    assert elapsed < 0.65, f"assignment took {elapsed * 1000:.0f} ms (NOTIFY should wake it)"
    await worker.close()


async def test_unary_claim_waits_for_work(leases_channel, sched):
    job_type = _job_type()
    stub = leases_pb2_grpc.LeaseServiceStub(leases_channel)
    request = leases_pb2.ClaimRequest(
        worker_id="w", job_types=[job_type], max_jobs=5, wait=duration_pb2.Duration(seconds=5)
    )
    empty = await stub.Claim(
        leases_pb2.ClaimRequest(worker_id="w", job_types=[job_type]), metadata=_md(_token())
    )
    assert list(empty.assignments) == []
    started = time.monotonic()
    claim = asyncio.ensure_future(stub.Claim(request, metadata=_md(_token())))
    await asyncio.sleep(0.2)
    (job,) = await _submit(sched, job_type)
    reply = await claim
    assert [a.job_id for a in reply.assignments] == [job.id]
    assert time.monotonic() - started < 1.0


async def test_fairness_small_tenant_is_served_in_the_first_batches(leases_channel, sched):
    job_type = _job_type()
    await _submit(sched, job_type, 5000, tenant="acme")
    small = {j.id for j in await _submit(sched, job_type, 10, tenant="globex")}
    stub = leases_pb2_grpc.LeaseServiceStub(leases_channel)
    md = _md(_token(tenants=("acme", "globex")), tenant="acme")
    seen: list[str] = []
    for _ in range(2):
        reply = await stub.Claim(
            leases_pb2.ClaimRequest(worker_id="w", job_types=[job_type], max_jobs=100),
            metadata=md,
        )
        assert len(reply.assignments) == 100
        seen += [a.job_id for a in reply.assignments if a.tenant == "globex"]
    assert set(seen) == small


@pytest.mark.parametrize("tenants", [("acme", "globex"), ("*",)], ids=["two-tenants", "any"])
async def test_a_shared_fleet_serves_every_granted_tenant_without_naming_one(
    leases_channel, sched, db, tenants
):
    """A worker token granting several tenants (or '*') opens one Work stream with no
    x-stella-tenant, is served both tenants' jobs fairly, and completes them; a method that
    acts for one tenant (the scheduler's) still asks which."""
    job_type = _job_type()
    big = {j.id for j in await _submit(sched, job_type, 300, tenant="acme")}
    small = {j.id for j in await _submit(sched, job_type, 6, tenant="globex")}
    worker = StreamWorker(leases_channel, _token(tenants=tenants))  # no tenant header
    welcome = await worker.hello([job_type], capacity=40)
    assert welcome.session_id
    await worker.collect_assignments(40)
    first = {a.job_id for a in worker.assignments[:40]}
    assert small <= first, "fair share: the small tenant's jobs come in the first batch"
    assert {a.tenant for a in worker.assignments} == {"acme", "globex"}
    await worker.send(
        batch=leases_pb2.WorkerBatch(completions=[_completion(a) for a in worker.assignments])
    )
    acks = (await worker.next("results")).results.acks
    assert all(a.ok for a in acks)
    assert len(acks) == 40
    await worker.close()
    done = {
        str(r[0])
        for r in db.execute(
            "SELECT id FROM orchestrator.jobs WHERE job_type = %s AND state = 'succeeded'",
            (job_type,),
        ).fetchall()
    }
    assert done == first
    assert done <= big | small

    with pytest.raises(grpc.aio.AioRpcError) as which:
        await sched.ListJobs(
            scheduler_pb2.ListJobsRequest(),
            metadata=_md(mint_dev_token(SECRET, "fleet", list(tenants), OPERATE)),
        )
    assert which.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "x-stella-tenant" in (which.value.details() or "")


# --------------------------------------------------------------------------- expiry


@pytest.fixture
async def short_app(lease_db: str):
    settings = LeaseSettings(
        lease_ttl_s=1, claim_batch=100, watchdog_interval_s=0.1, completer_flush_ms=2
    )
    async with build_app(
        _config(lease_db), settings=settings, watchdog_lock_key=SHORT_LOCK_KEY
    ) as a:
        await a.service.start()
        try:
            yield a
        finally:
            await a.service.stop()


async def test_two_workers_race_after_expiry_one_wins(short_app, sched, db, lease_db):
    """Worker A leases, its lease expires and the job is re-leased by worker B; both complete:
    B wins, A gets lease_lost, the job's result is B's."""
    job_type = _job_type()
    policy = common_pb2.RetryPolicy(max_attempts=3)
    policy.initial_backoff.FromMilliseconds(100)
    policy.max_backoff.FromMilliseconds(100)
    (job,) = await _submit(sched, job_type, retry_policy=policy)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{short_app.service.port}") as ch:
        stub = leases_pb2_grpc.LeaseServiceStub(ch)
        md = _md(_token())
        (a,) = (
            await stub.Claim(
                leases_pb2.ClaimRequest(worker_id="A", job_types=[job_type]), metadata=md
            )
        ).assignments
        # B waits; the watchdog expires A's lease (ttl 1 s) and the job becomes ready again
        (b,) = (
            await stub.Claim(
                leases_pb2.ClaimRequest(
                    worker_id="B", job_types=[job_type], wait=duration_pb2.Duration(seconds=5)
                ),
                metadata=md,
            )
        ).assignments
        assert (b.job_id, b.attempt) == (a.job_id, 2)
        assert b.lease_id != a.lease_id
        expired = db.execute(
            "SELECT reason, data->>'error_class' FROM orchestrator.events"
            " WHERE job_id = %s AND type = 'job.retrying'",
            (job.id,),
        ).fetchall()
        assert expired == [("lease_expired", "lease_expired")]
        b_done, a_done = await asyncio.gather(
            stub.Complete(
                leases_pb2.CompleteRequest(completions=[_completion(b, by="B")]), metadata=md
            ),
            stub.Complete(
                leases_pb2.CompleteRequest(completions=[_completion(a, by="A")]), metadata=md
            ),
        )
    assert [(x.ok, x.error_reason) for x in b_done.acks] == [(True, "")]
    assert [(x.ok, x.error_reason) for x in a_done.acks] == [(False, "lease_lost")]
    row = _row(db, job.id)
    assert (row["state"], row["result"], row["worker_id"]) == ("succeeded", {"by": "B"}, "B")


async def test_expired_lease_with_no_attempts_left_is_dead_lettered(short_app, sched, db):
    job_type = _job_type()
    (job,) = await _submit(sched, job_type, retry_policy=common_pb2.RetryPolicy(max_attempts=1))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{short_app.service.port}") as ch:
        stub = leases_pb2_grpc.LeaseServiceStub(ch)
        await stub.Claim(
            leases_pb2.ClaimRequest(worker_id="A", job_types=[job_type]), metadata=_md(_token())
        )
    for _ in range(100):
        row = _row(db, job.id)
        if row["state"] == "dead":
            break
        await asyncio.sleep(0.05)
    assert (row["state"], row["reason"]) == ("dead", "attempts_exhausted")
    entries = db.execute(
        "SELECT error_class, attempts, retryable FROM orchestrator.dead_letter WHERE job_id = %s",
        (job.id,),
    ).fetchall()
    assert entries == [("lease_expired", 1, True)]


async def test_only_one_watchdog_is_leader(app, lease_db):
    assert app.watchdog.is_leader
    async with Database(lease_db) as database:
        rival = Watchdog(lease_db, LeaseLedger(database), interval_s=0.05, lock_key=TEST_LOCK_KEY)
        task = asyncio.create_task(rival.run())
        await asyncio.sleep(0.5)
        assert not rival.is_leader
        assert app.watchdog.is_leader
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
