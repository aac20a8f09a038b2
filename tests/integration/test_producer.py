"""The producer client (``stella_orchestrator.producer``) against the real scheduler and
leases services (in-process, real PostgreSQL), with the worker SDK serving the jobs.

Each test acts as a tenant of its own, so lists (dead letters, quotas, schedules) hold only
what the test made. Nothing here reads the ledger behind the client's back except where the
test checks that an idempotent repeat queued nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from stella.orchestrator.v1 import common_pb2, resources_pb2
from stella_orchestrator.errors import StellaError
from stella_orchestrator.producer import (
    AsyncClient,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RPCError,
    RunBuilder,
    job_spec,
)
from stella_orchestrator.worker import ParseError, Worker

pytestmark = pytest.mark.integration

WAIT_S = 90.0
SCOPES = ("orch:read", "orch:operate", "orch:backfill", "orch:quota")


@pytest.fixture
def tenant(db) -> str:
    name = f"prod-{uuid.uuid4().hex[:10]}"
    db.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (name,))
    return name


@pytest.fixture
def job_type() -> str:
    return f"prod{uuid.uuid4().hex[:10]}.ingest"


@pytest.fixture
async def client(scheduler_target: str, make_token, tenant: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(scheduler_target, token=make_token(tenant, SCOPES)) as client:
        yield client


@contextlib.asynccontextmanager
async def serving(
    leases_target: str, token: str, job_type: str, handler: Callable[[Any], Any]
) -> AsyncIterator[Worker]:
    worker = Worker(leases_target, token=token, concurrency=4, max_reconnect_attempts=3)
    worker.add_handler(job_type, handler)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        async with asyncio.timeout(WAIT_S):
            await worker.drain()
            await task


async def echo(job: Any) -> dict[str, Any]:
    return {"key": job.key, "n": job.payload.get("n", 0)}


async def test_a_repeated_idempotency_key_returns_the_first_job(
    client: AsyncClient, db, tenant: str, job_type: str
) -> None:
    first = await client.submit_job(job_type, {"n": 1}, idempotency_key="k-1", priority=5)
    again = await client.submit_job(job_type, {"n": 1}, idempotency_key="k-1", priority=5)
    assert (first.existing, again.existing) == (False, True)
    assert again.job.id == first.job.id
    assert first.job.priority == 5
    assert first.job.state == common_pb2.JOB_STATE_READY
    count = db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE tenant = %s", (tenant,)
    ).fetchone()[0]
    assert count == 1
    batch = await client.submit_jobs(
        [job_spec(job_type, {"n": 2}, idempotency_key="k-2"), job_spec(job_type, {"n": 3})]
    )
    assert [s.existing for s in batch] == [False, False]
    assert {j.job.payload["n"] for j in batch} == {2.0, 3.0}


async def test_a_dag_built_with_then_runs_in_order_and_the_run_is_waited_for(
    client: AsyncClient, leases_target: str, make_token, tenant: str, job_type: str
) -> None:
    run = RunBuilder(f"dag-{job_type}", idempotency_key=f"run-{job_type}")
    fetch = run.job("fetch", job_type, {"n": 1})
    fetch.then("parse", job_type, {"n": 2}).then("index", job_type, {"n": 3})
    run.job("notify", job_type).after("index", fetch)
    created = await client.create_run(run)
    assert not created.existing
    assert [j.key for j in created.jobs] == ["fetch", "parse", "index", "notify"]
    dag = await client.get_run_dag(created.run.id)
    ids = {j.key: j.id for j in dag.jobs}
    edges = {(e.parent_job_id, e.child_job_id) for e in dag.edges}
    assert edges == {
        (ids["fetch"], ids["parse"]),
        (ids["parse"], ids["index"]),
        (ids["index"], ids["notify"]),
        (ids["fetch"], ids["notify"]),
    }
    assert (await client.create_run(run)).existing  # the same idempotency key

    order: list[str] = []

    async def record(job: Any) -> dict[str, Any]:
        order.append(job.key)
        return await echo(job)

    token = make_token(tenant, ("orch:work",), subject="producer-test-worker")
    async with serving(leases_target, token, job_type, record):
        finished = await client.wait_run(created.run.id, timeout_s=WAIT_S)
    assert finished.state == common_pb2.RUN_STATE_SUCCEEDED
    assert order == ["fetch", "parse", "index", "notify"]
    parsed = await client.get_job(created.job("parse").id)
    assert dict(parsed.result) == {"key": "parse", "n": 2.0}


async def test_watch_resumes_from_a_seq(client: AsyncClient, job_type: str) -> None:
    submitted = [(await client.submit_job(job_type, {"n": n})).job.id for n in range(3)]
    seen = []
    async for event in client.watch(after_seq=0, types=["job.created"]):
        if event.job.id in submitted:
            seen.append(event)
        if len(seen) == 3:
            break
    assert [e.job.id for e in seen] == submitted
    assert seen[0].seq < seen[1].seq < seen[2].seq
    # A consumer that processed the first event resumes after it: only the later two come.
    resumed = []
    async for event in client.watch(after_seq=seen[0].seq, types=["job.created"]):
        if event.job.id in submitted:
            resumed.append(event.job.id)
        if len(resumed) == 2:
            break
    assert resumed == submitted[1:]


async def test_typed_errors(
    client: AsyncClient, scheduler_target: str, make_token, job_type: str
) -> None:
    with pytest.raises(NotFoundError) as missing:
        await client.get_job(str(uuid.uuid4()))
    assert isinstance(missing.value, RPCError)
    assert isinstance(missing.value, StellaError)
    assert missing.value.code is grpc.StatusCode.NOT_FOUND
    with pytest.raises(InvalidArgumentError):
        await client.submit_job("", {})
    run = RunBuilder("bad")
    with pytest.raises(ValueError, match="no job 'nope'"):
        run.job("a", job_type, depends_on=("nope",))
    async with AsyncClient(scheduler_target, token=make_token("acme", ("orch:read",))) as ro:
        with pytest.raises(PermissionDeniedError):
            await ro.submit_job(job_type, {})
    ready = (await client.submit_job(job_type, {})).job
    with pytest.raises(TimeoutError):
        await client.wait_job(ready.id, timeout_s=0.3)


async def test_dead_letters_are_listed_and_replayed(
    client: AsyncClient, leases_target: str, make_token, tenant: str, job_type: str
) -> None:
    async def broken(job: Any) -> None:
        raise ParseError("not JSON")

    token = make_token(tenant, ("orch:work",), subject="producer-test-worker")
    submitted = (await client.submit_job(job_type, {"n": 1})).job
    async with serving(leases_target, token, job_type, broken):
        dead = await client.wait_job(submitted.id, timeout_s=WAIT_S)
    assert dead.state == common_pb2.JOB_STATE_DEAD
    assert dead.last_error.error_class == common_pb2.ERROR_CLASS_PARSE_ERROR
    entries = await client.list_dead_letters(job_type=job_type)
    assert [e.job_id for e in entries] == [submitted.id]
    replayed = await client.replay_dead_letter(entries[0].id, reason="parser fixed")
    assert replayed.job.id == submitted.id
    assert replayed.job.state == common_pb2.JOB_STATE_READY
    assert replayed.entry.status == resources_pb2.DEAD_LETTER_STATUS_REPLAYED
    with pytest.raises(FailedPreconditionError):
        await client.replay_dead_letter(entries[0].id, reason="twice")
    async with serving(leases_target, token, job_type, echo):
        done = await client.wait_job(replayed.job.id, timeout_s=WAIT_S)
    assert done.state == common_pb2.JOB_STATE_SUCCEEDED


async def test_quotas_schedules_and_a_backfill_preview(client: AsyncClient, job_type: str) -> None:
    quota = await client.create_quota(job_type, max_active=3, reason="upstream is small")
    assert (quota.job_type, quota.max_active) == (job_type, 3)
    updated = await client.update_quota(quota.id, max_active=5, reason="bigger")
    assert updated.max_active == 5
    assert (await client.pause_jobs(job_type, reason="maintenance")).paused
    assert [q.paused for q in await client.list_quotas(job_type=job_type)] == [True]
    assert not (await client.resume_jobs(job_type, reason="done")).paused
    await client.delete_quota(quota.id, reason="not needed")
    assert await client.list_quotas(job_type=job_type) == []

    template = RunBuilder("nightly")
    template.job("fetch", job_type).then("parse", job_type)
    schedule = await client.create_schedule("nightly", "0 3 * * *", template)
    assert schedule.next_fire_at.seconds > 0
    assert [len(s.run_template.jobs) for s in await client.list_schedules()] == [2]
    await client.delete_schedule(schedule.id)
    assert await client.list_schedules() == []

    source = await client.create_source("nvd", "nvd", host="nvd.example", job_types=[job_type])
    assert (await client.get_source(source.id)).name == "nvd"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    preview = await client.create_backfill(
        source.id,
        job_type,
        start,
        start + timedelta(days=1),
        timedelta(hours=1),
        dry_run=True,
        reason="NVD outage",
        ticket="OPS-1",
    )
    assert preview.preview.window_count == 24
    assert await client.list_backfills(source_id=source.id) == []
    made = await client.create_backfill(
        source.id,
        job_type,
        start,
        start + timedelta(hours=2),
        timedelta(hours=1),
        reason="NVD outage",
        ticket="OPS-1",
    )
    assert (await client.get_backfill(made.backfill.id)).job_count == 2


async def test_the_blocking_client_submits_waits_and_watches(
    scheduler_target: str, leases_target: str, make_token, tenant: str, job_type: str
) -> None:
    # The services run on this test's event loop: the blocking client is driven from a
    # thread, the way an application's thread would use it.
    def produce() -> list[str]:
        with Client(scheduler_target, token=make_token(tenant, SCOPES)) as client:
            submitted = client.submit_job(job_type, {"n": 7}, idempotency_key="sync-1")
            assert client.submit_job(job_type, {"n": 7}, idempotency_key="sync-1").existing
            done = client.wait_job(submitted.job.id, timeout_s=WAIT_S)
            assert done.state == common_pb2.JOB_STATE_SUCCEEDED
            assert dict(done.result) == {"key": "", "n": 7.0}
            types = []
            for event in client.watch(after_seq=0, job_id=submitted.job.id):
                types.append(event.type)
                if event.type == "job.succeeded":
                    break
            with pytest.raises(NotFoundError):
                client.get_run(str(uuid.uuid4()))
        client.close()  # idempotent
        return types

    token = make_token(tenant, ("orch:work",), subject="producer-test-worker")
    async with serving(leases_target, token, job_type, echo):
        types = await asyncio.to_thread(produce)
    assert types[0] == "job.created"
    assert types[-1] == "job.succeeded"


async def test_watch_reconnects_after_the_scheduler_restarts_and_misses_nothing(
    database_url: str, make_token, tenant: str, job_type: str
) -> None:
    # A scheduler of the test's own on a fixed port, stopped and started again while a
    # watch is open: the watch reconnects by itself and resumes after the last seq it gave.
    from dataclasses import replace

    from bench.ports import free_block
    from orchestrator_scheduler import build_service
    from tests.conftest import service_config

    config = replace(service_config("scheduler", database_url), grpc_port=free_block(1))
    target = f"127.0.0.1:{config.grpc_port}"

    @contextlib.asynccontextmanager
    async def scheduler_up() -> AsyncIterator[None]:
        async with build_service(config, schedule_firing=False) as service:
            await service.start()
            try:
                yield
            finally:
                await service.stop()

    token = make_token(tenant, SCOPES)
    async with AsyncClient(target, token=token, wait_for_ready=True) as client:
        seen: list[str] = []
        async with scheduler_up():
            before = [(await client.submit_job(job_type, {"n": n})).job.id for n in range(2)]
            stream = client.watch(after_seq=0, types=["job.created"], max_retries=50)
            while len(seen) < 2:
                event = await anext(stream)
                seen.append(event.job.id)
        # The scheduler is down: the next read fails, and the watch retries with backoff.
        pending = asyncio.ensure_future(anext(stream))
        async with scheduler_up():
            after = (await client.submit_job(job_type, {"n": 9})).job.id
            async with asyncio.timeout(WAIT_S):
                seen.append((await pending).job.id)
        await stream.aclose()
    assert seen == [*before, after]  # in order, the first two not delivered again
