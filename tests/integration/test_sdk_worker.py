"""The Python worker SDK against the real leases service and scheduler (real PostgreSQL).

The leases service runs in-process on a free port with a 3 s lease TTL (heartbeats every
second), so cancellations and heartbeats show up within a test's patience. Jobs are
submitted through the scheduler stub; outcomes are read from the ledger. Each test uses its
own job type so jobs of other tests never reach its worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from psycopg.rows import dict_row

from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2
from stella_orchestrator.worker import (
    ParseError,
    RPCError,
    UpstreamThrottled,
    Worker,
    artifact,
    bytes_digest,
    heartbeat,
    json_digest,
    progress,
)
from tests.conftest import DEV_SECRET, LEASE_TTL_S

pytestmark = pytest.mark.integration

EXAMPLE_SCRIPT = Path(__file__).resolve().parents[2] / "clients/python/examples/ingest_worker.py"
WAIT_S = 30.0


@pytest.fixture
async def adb(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, row_factory=dict_row
    ) as conn:
        yield conn


@pytest.fixture
def job_type() -> str:
    return f"sdk{uuid.uuid4().hex[:12]}.ingest"


@pytest.fixture
def make_worker(leases_target: str, make_token) -> Callable[..., Worker]:
    def make(**kwargs: Any) -> Worker:
        kwargs.setdefault("token", make_token("acme", ("orch:work",), subject="sdk-worker"))
        kwargs.setdefault("max_reconnect_attempts", 3)
        return Worker(leases_target, **kwargs)

    return make


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Task[None]]:
    """Runs the worker in the background; drains it (and re-raises its error) at exit."""
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        if not task.done():
            await asyncio.wait_for(worker.drain(), WAIT_S)
        await asyncio.wait_for(task, WAIT_S)


def _leases_config(database_url: str, **overrides: Any) -> Any:
    """A leases service of its own on a free port (for tests that stop or restart it)."""
    from orchestrator_grpckit import ServiceConfig

    return ServiceConfig(
        service_name="leases",
        grpc_port=0,
        metrics_port=None,
        database_url=database_url,
        auth_hs256_secret=DEV_SECRET,
        **overrides,
    )


async def submit(
    scheduler, job_type: str, payloads: list[dict[str, Any]], **spec: Any
) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(payloads), 100):
        request = scheduler_pb2.SubmitJobsRequest()
        for payload in payloads[start : start + 100]:
            job = resources_pb2.JobSpec(job_type=job_type, **spec)
            job.payload.update(payload)
            request.jobs.append(job)
        reply = await scheduler.SubmitJobs(request)
        ids += [j.id for j in reply.jobs]
    return ids


async def rows(adb, ids: list[str]) -> dict[str, dict[str, Any]]:
    cur = await adb.execute("SELECT * FROM orchestrator.jobs WHERE id = ANY(%s::uuid[])", (ids,))
    return {str(r["id"]): r for r in await cur.fetchall()}


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = WAIT_S) -> Any:
    """Polls ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s (last: {value!r})")
        await asyncio.sleep(0.05)


async def test_worker_completes_200_jobs_with_their_results(
    scheduler, adb, make_worker, job_type
) -> None:
    worker = make_worker(concurrency=20)
    seen: list[str] = []

    @worker.handler(job_type)
    async def double(job):
        seen.append(job.id)
        await asyncio.sleep(0.001)
        return {"n": job.payload["n"], "double": job.payload["n"] * 2, "tenant": job.tenant}

    ids = await submit(scheduler, job_type, [{"n": i} for i in range(200)])
    async with running(worker):

        async def all_done() -> bool:
            states = await rows(adb, ids)
            return all(r["state"] == "succeeded" for r in states.values())

        await eventually(all_done)
    final = await rows(adb, ids)
    for i, job_id in enumerate(ids):
        row = final[job_id]
        expected = {"n": i, "double": 2 * i, "tenant": "acme"}
        assert row["result"] == expected
        assert row["result_digest"] == json_digest(expected)
        assert row["attempt"] == 1
    assert sorted(seen) == sorted(ids)  # each exactly once
    assert worker.stats.completed == 200


async def test_throttled_handler_is_retried_after_retry_after(
    scheduler, adb, make_worker, job_type
) -> None:
    worker = make_worker()

    @worker.handler(job_type)
    async def throttled(job):
        raise UpstreamThrottled("nvd says slow down", retry_after_s=60)

    (job_id,) = await submit(scheduler, job_type, [{}])
    before = datetime.now(UTC)
    async with running(worker):

        async def retried() -> dict[str, Any] | None:
            row = (await rows(adb, [job_id]))[job_id]
            return row if row["state"] == "ready" and row["attempt"] == 1 else None

        row = await eventually(retried)
    assert row["last_error_class"] == "http_429"
    assert row["last_error_retryable"] is True
    assert row["not_before"] >= before + timedelta(seconds=60)


async def test_parse_error_dead_letters_the_job(scheduler, adb, make_worker, job_type) -> None:
    worker = make_worker()

    @worker.handler(job_type)
    async def broken(job):
        raise ParseError("unexpected '<' at 1:1")

    (job_id,) = await submit(scheduler, job_type, [{}])
    async with running(worker):

        async def dead() -> dict[str, Any] | None:
            row = (await rows(adb, [job_id]))[job_id]
            return row if row["state"] == "dead" else None

        row = await eventually(dead)
    assert row["last_error_class"] == "parse_error"
    assert row["last_error_retryable"] is False
    assert "unexpected" in row["last_error_message"]
    assert row["attempt"] == 1


async def test_progress_and_heartbeat_reach_the_job_row(
    scheduler, adb, make_worker, job_type
) -> None:
    worker = make_worker()
    step = asyncio.Event()
    release = asyncio.Event()

    @worker.handler(job_type)
    async def slow(job):
        progress(42, "page 2 of 5")
        await step.wait()
        heartbeat(80, "page 4 of 5")  # goes out with the next heartbeat (every TTL/3 = 1 s)
        await release.wait()
        return {}

    (job_id,) = await submit(scheduler, job_type, [{}])
    async with running(worker):

        async def progress_is(percent: float) -> dict[str, Any] | None:
            row = (await rows(adb, [job_id]))[job_id]
            return row if row["progress_percent"] == percent else None

        row = await eventually(lambda: progress_is(42))
        assert row["progress_message"] == "page 2 of 5"
        step.set()
        row = await eventually(lambda: progress_is(80), timeout_s=LEASE_TTL_S * 2)
        assert row["progress_message"] == "page 4 of 5"
        assert row["state"] == "leased"
        # Heartbeats kept the lease alive past its first TTL.
        await asyncio.sleep(LEASE_TTL_S * 1.2)
        row = (await rows(adb, [job_id]))[job_id]
        assert row["state"] == "leased"
        assert row["attempt"] == 1
        release.set()

        async def succeeded() -> bool:
            return (await rows(adb, [job_id]))[job_id]["state"] == "succeeded"

        await eventually(succeeded)


async def test_artifacts_are_recorded_with_their_digest(
    scheduler, adb, make_worker, job_type
) -> None:
    worker = make_worker()
    external = "sha256:" + "ab" * 32

    @worker.handler(job_type)
    async def produce(job):
        artifact("advisories.ndjson", b'{"id":"A-1"}\n', media_type="application/x-ndjson")
        await asyncio.sleep(0.1)  # the first record goes out on its own
        artifact("raw.tar", digest=external, size_bytes=1234, uri="s3://bucket/raw.tar")
        return {"artifacts": 2}

    (job_id,) = await submit(scheduler, job_type, [{}])
    async with running(worker):

        async def recorded() -> list[dict[str, Any]]:
            cur = await adb.execute(
                "SELECT a.*, j.state FROM orchestrator.artifacts a"
                " JOIN orchestrator.jobs j ON j.id = a.job_id"
                " WHERE a.job_id = %s AND j.state = 'succeeded' ORDER BY a.name",
                (job_id,),
            )
            found = await cur.fetchall()
            return found if len(found) == 2 else []

        found = await eventually(recorded)
    ndjson, tar = found
    assert ndjson["name"] == "advisories.ndjson"
    assert ndjson["digest"] == bytes_digest(b'{"id":"A-1"}\n')
    assert (ndjson["size_bytes"], ndjson["media_type"]) == (13, "application/x-ndjson")
    assert (tar["digest"], tar["size_bytes"], tar["uri"]) == (external, 1234, "s3://bucket/raw.tar")
    assert ndjson["attempt"] == tar["attempt"] == 1


async def test_canceling_a_running_job_cancels_the_handler(
    scheduler, adb, make_worker, job_type
) -> None:
    worker = make_worker()
    started = asyncio.Event()
    observed = asyncio.Event()

    @worker.handler(job_type)
    async def long(job):
        started.set()
        try:
            await asyncio.sleep(120)
        except asyncio.CancelledError:
            observed.set()
            raise
        return {"finished": True}

    (job_id,) = await submit(scheduler, job_type, [{}])
    async with running(worker):
        await asyncio.wait_for(started.wait(), WAIT_S)
        await scheduler.CancelJob(
            scheduler_pb2.CancelJobRequest(
                job_id=job_id, operator=common_pb2.OperatorContext(reason="sdk test")
            )
        )
        await asyncio.wait_for(observed.wait(), LEASE_TTL_S * 3)
    row = (await rows(adb, [job_id]))[job_id]
    assert row["state"] == "canceled"
    assert row["result"] is None
    assert worker.stats.canceled == 1


async def test_drain_finishes_in_flight_handlers_before_run_returns(
    scheduler, adb, make_worker, job_type
) -> None:
    worker = make_worker(concurrency=5)
    started: set[str] = set()
    finished: set[str] = set()
    all_started = asyncio.Event()

    @worker.handler(job_type)
    async def slow(job):
        started.add(job.id)
        if len(started) == 5:
            all_started.set()
        await asyncio.sleep(0.5)
        finished.add(job.id)
        return {"ok": True}

    ids = await submit(scheduler, job_type, [{"i": i} for i in range(8)])
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(all_started.wait(), WAIT_S)
    await asyncio.wait_for(worker.drain(), WAIT_S)
    assert task.done()
    await task
    assert finished == started
    assert len(finished) == 5
    states = await rows(adb, ids)
    assert {i for i, r in states.items() if r["state"] == "succeeded"} == finished
    # The rest were never leased (or released at once): still claimable.
    assert all(states[i]["state"] == "ready" for i in set(ids) - finished)


async def test_invalid_token_raises_unauthenticated(make_worker, job_type) -> None:
    worker = make_worker(token="not-a-jwt")

    @worker.handler(job_type)
    async def never(job):
        raise AssertionError("no job may reach an unauthenticated worker")

    with pytest.raises(RPCError) as caught:
        await asyncio.wait_for(worker.run(), WAIT_S)
    assert caught.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.reason  # the ErrorInfo reason from the status details


async def test_token_without_work_scope_is_permission_denied(
    make_worker, make_token, job_type
) -> None:
    worker = make_worker(token=make_token("acme", ("orch:read",)))

    @worker.handler(job_type)
    async def never(job):
        raise AssertionError("unreachable")

    with pytest.raises(RPCError) as caught:
        await asyncio.wait_for(worker.run(), WAIT_S)
    assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED


async def test_worker_reconnects_after_the_service_restarts(
    database_url, scheduler, adb, make_token, job_type
) -> None:
    from dataclasses import replace

    from orchestrator_leases import LeaseSettings, build_service

    config = _leases_config(database_url, shutdown_grace_s=0.5)
    settings = LeaseSettings(lease_ttl_s=LEASE_TTL_S, watchdog_interval_s=0.2)
    started = asyncio.Event()
    interrupted = asyncio.Event()
    attempts: list[int] = []

    async def handle(job):
        attempts.append(job.attempt)
        if len(attempts) == 1:
            started.set()
            try:
                await asyncio.sleep(120)
            except asyncio.CancelledError:
                interrupted.set()
                raise
        return {"attempt": job.attempt}

    async with build_service(config, settings=settings) as first:
        await first.start()
        port = first.port
        worker = Worker(
            f"127.0.0.1:{port}",
            token=make_token("acme", ("orch:work",)),
            rng=random.Random(3),
        )
        worker.add_handler(job_type, handle)
        task = asyncio.create_task(worker.run())
        (job_id,) = await submit(scheduler, job_type, [{}])
        await asyncio.wait_for(started.wait(), WAIT_S)
        await first.stop()
    # The stream broke: the handler was canceled, and the worker keeps retrying.
    await asyncio.wait_for(interrupted.wait(), WAIT_S)
    assert not task.done()
    async with build_service(replace(config, grpc_port=port), settings=settings) as second:
        await second.start()
        try:

            async def succeeded() -> dict[str, Any] | None:
                row = (await rows(adb, [job_id]))[job_id]
                return row if row["state"] == "succeeded" else None

            row = await eventually(succeeded)
            assert row["result"] == {"attempt": row["attempt"]}
            assert len(attempts) == 2
            assert worker.stats.stream_failures >= 1
            await asyncio.wait_for(worker.drain(), WAIT_S)
            await task
        finally:
            await second.stop()


async def test_a_stopping_leases_service_lets_running_handlers_finish(
    database_url, scheduler, adb, make_token, job_type
) -> None:
    """A rolling update: the leases service stops while handlers run. It sends ServerDrain,
    assigns nothing more, applies the results the handlers deliver, and closes once the
    worker hung up — well inside the grace period; no handler is cancelled and no job runs
    twice."""
    from orchestrator_leases import LeaseSettings, build_service

    grace_s = 60.0
    config = _leases_config(database_url, shutdown_grace_s=grace_s)
    rng = random.Random()
    concurrency = rng.randint(2, 6)
    running_now = 0
    all_started = asyncio.Event()
    cancelled: list[str] = []
    attempts: list[tuple[str, int]] = []

    async def handle(job):
        nonlocal running_now
        attempts.append((job.id, job.attempt))
        running_now += 1
        if running_now == concurrency:
            all_started.set()
        try:
            await asyncio.sleep(rng.uniform(0.5, 1.5))
        except asyncio.CancelledError:
            cancelled.append(job.id)
            raise
        return {"attempt": job.attempt}

    # a backlog larger than the worker's capacity: some jobs must stay ready, not be leased
    ids = await submit(scheduler, job_type, [{"n": i} for i in range(concurrency * 3)])
    async with build_service(config, settings=LeaseSettings(lease_ttl_s=30)) as service:
        await service.start()
        worker = Worker(
            f"127.0.0.1:{service.port}",
            token=make_token("acme", ("orch:work",)),
            concurrency=concurrency,
            max_reconnect_attempts=1,
        )
        worker.add_handler(job_type, handle)
        task = asyncio.create_task(worker.run())
        await asyncio.wait_for(all_started.wait(), WAIT_S)
        started = time.monotonic()
        await service.stop()
        stopped_in = time.monotonic() - started
    assert cancelled == []
    assert stopped_in < grace_s / 2, (
        f"the stop waited {stopped_in:.1f} s: the stream was not drained"
    )
    by_state: dict[str, int] = {}
    for row in (await rows(adb, ids)).values():
        by_state[row["state"]] = by_state.get(row["state"], 0) + 1
    # the jobs that ran succeeded once; nothing is left leased; the rest wait for a replica
    assert by_state.get("succeeded") == concurrency
    assert by_state.get("ready") == 2 * concurrency
    assert len(attempts) == len({job_id for job_id, _ in attempts}) == concurrency
    worker.stop()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, WAIT_S)


async def test_an_old_work_stream_is_drained_and_the_worker_reconnects(
    database_url, scheduler, adb, make_token, job_type
) -> None:
    """Streams older than ORCH_WORK_STREAM_MAX_AGE_S are drained so workers spread over new
    replicas: the worker finishes its handlers, reconnects and goes on; nothing is cancelled
    and every job succeeds once."""
    from orchestrator_leases import LeaseSettings, build_service

    config = _leases_config(database_url)
    rng = random.Random()
    max_age_s = rng.uniform(1.0, 2.0)
    cancelled: list[str] = []
    attempts: list[str] = []

    async def handle(job):
        attempts.append(job.id)
        try:
            await asyncio.sleep(rng.uniform(0.1, 0.4))
        except asyncio.CancelledError:
            cancelled.append(job.id)
            raise
        return {}

    total = rng.randint(40, 80)
    ids = await submit(scheduler, job_type, [{"n": i} for i in range(total)])
    settings = LeaseSettings(work_stream_max_age_s=max_age_s)
    async with build_service(config, settings=settings) as service:
        await service.start()
        try:
            worker = Worker(
                f"127.0.0.1:{service.port}",
                token=make_token("acme", ("orch:work",)),
                concurrency=4,
            )
            worker.add_handler(job_type, handle)
            async with running(worker):

                async def all_done() -> bool:
                    return all(r["state"] == "succeeded" for r in (await rows(adb, ids)).values())

                await eventually(all_done, 120)
            assert worker.stats.connects >= 2, "the stream was never drained for age"
            assert worker.stats.stream_failures == 0
        finally:
            await service.stop()
    assert cancelled == []
    assert sorted(attempts) == sorted(ids)


async def test_example_worker_script_runs_and_drains_on_sigterm(
    leases_target, scheduler, adb, make_token
) -> None:
    """clients/python/examples/ingest_worker.py, as documented, in a subprocess."""
    import signal
    import sys

    job_type = f"sdk{uuid.uuid4().hex[:12]}.ingest"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE_SCRIPT),
        "--target",
        leases_target,
        "--token",
        make_token("acme", ("orch:work",)),
        "--job-type",
        job_type,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        (job_id,) = await submit(scheduler, job_type, [{"pages": 2}])

        async def succeeded() -> dict[str, Any] | None:
            row = (await rows(adb, [job_id]))[job_id]
            return row if row["state"] == "succeeded" else None

        row = await eventually(succeeded)
        assert row["result"]["count"] == 20
        cur = await adb.execute(
            "SELECT digest FROM orchestrator.artifacts WHERE job_id = %s", (job_id,)
        )
        assert [r["digest"] for r in await cur.fetchall()] == [row["result"]["artifact_digest"]]
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), WAIT_S)
        assert process.returncode == 0, output.decode()
        assert b"draining" in output
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
