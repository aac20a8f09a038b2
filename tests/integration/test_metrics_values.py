"""Metrics worth alerting on, checked by value (docs/metrics.md).

A scheduler, a leases service and an audit service run in-process on a database of their
own (so the leader-only queue snapshot sees exactly this test's jobs), with a real Python
worker. A small workload (jobs that succeed, jobs that die with ``parse_error``, one
rejected submit) must show in the Prometheus registry as: queue depth counting the
submitted jobs and then falling to zero, run-duration and start-latency counts equal to the
jobs leased and completed, the dead-letter gauge equal to the dead jobs, the audit chain lag
back at zero, and ``grpc_server_handled_total`` counting each RPC under its code. Every wait
is on a condition with a generous deadline, never on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import psycopg
import pytest
from prometheus_client import REGISTRY

from stella.orchestrator.v1 import resources_pb2, scheduler_pb2
from stella_orchestrator.worker import ParseError, Worker
from tests.conftest import Stub, migrated_database, service_config

pytestmark = pytest.mark.integration

WAIT_S = 60.0
SCHEDULER = "stella.orchestrator.v1.SchedulerService"
OK_JOBS = 6
DEAD_JOBS = 2


@pytest.fixture(scope="module")
def own_database(admin_url: str) -> Iterator[str]:
    with migrated_database(admin_url, "orch_metrics", ("acme",)) as url:
        yield url


def sample(name: str, **labels: str) -> float:
    """A sample's value in this process's registry (0 when the series does not exist)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def series(name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of ``name`` whose labels include ``labels``."""
    found = []
    for family in REGISTRY.collect():
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                found.append((s.labels, s.value))
    return found


async def eventually(check: Callable[[], Awaitable[Any] | Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_S} s (last: {value!r})")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def stack(url: str) -> AsyncIterator[tuple[str, str, Any, Any]]:
    """Scheduler, leases (queue snapshot every 0.1 s) and audit on ``url``."""
    from orchestrator_audit import build_service as build_audit
    from orchestrator_audit._keys import Signer
    from orchestrator_leases import LeaseSettings, build_app
    from orchestrator_scheduler import build_service as build_scheduler

    settings = LeaseSettings(
        lease_ttl_s=3.0, watchdog_interval_s=0.2, ratelimit=False, queue_metrics_interval_s=0.1
    )
    async with contextlib.AsyncExitStack() as stack:
        scheduler = await stack.enter_async_context(
            build_scheduler(service_config("scheduler", url), schedule_firing=False)
        )
        leases = await stack.enter_async_context(
            build_app(service_config("leases", url), settings=settings)
        )
        audit = await stack.enter_async_context(
            build_audit(service_config("audit", url), signer=Signer.development())
        )
        for service in (scheduler, leases.service, audit):
            await service.start()
            stack.push_async_callback(service.stop)
        yield (
            f"127.0.0.1:{scheduler.port}",
            f"127.0.0.1:{leases.service.port}",
            leases,
            audit.chainer,  # type: ignore[attr-defined]
        )


async def test_a_workload_shows_in_the_metrics_by_value(own_database: str, make_token) -> None:
    ok_type = f"m{uuid.uuid4().hex[:10]}.ok"
    dead_type = f"m{uuid.uuid4().hex[:10]}.dead"
    handled = "grpc_server_handled_total"
    submit_labels = {"grpc_type": "unary", "grpc_service": SCHEDULER, "grpc_method": "SubmitJobs"}
    ok_before = sample(handled, grpc_code="OK", **submit_labels)
    invalid_before = sample(handled, grpc_code="INVALID_ARGUMENT", **submit_labels)
    started_before = sample("grpc_server_started_total", **submit_labels)

    async with (
        stack(own_database) as (scheduler_target, leases_target, leases, chainer),
        grpc.aio.insecure_channel(scheduler_target) as channel,
    ):
        scheduler = Stub(channel, make_token("acme"))
        ids: dict[str, list[str]] = {}
        for job_type, n in ((ok_type, OK_JOBS), (dead_type, DEAD_JOBS)):
            request = scheduler_pb2.SubmitJobsRequest(
                jobs=[resources_pb2.JobSpec(job_type=job_type) for _ in range(n)]
            )
            ids[job_type] = [j.id for j in (await scheduler.SubmitJobs(request)).jobs]
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await scheduler.SubmitJobs(
                scheduler_pb2.SubmitJobsRequest(jobs=[resources_pb2.JobSpec(job_type="")])
            )
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        # RPC metrics: the two accepted submits under OK, the rejected one under its code.
        # (An abort sends the status before the interceptor's bookkeeping runs, so the
        # client can see INVALID_ARGUMENT a moment before it is counted: wait for it.)
        def rpc_counts() -> tuple[float, float, float]:
            return (
                sample(handled, grpc_code="OK", **submit_labels) - ok_before,
                sample(handled, grpc_code="INVALID_ARGUMENT", **submit_labels) - invalid_before,
                sample("grpc_server_started_total", **submit_labels) - started_before,
            )

        await eventually(lambda: rpc_counts()[1] >= 1, "the rejected submit is counted")
        assert rpc_counts() == (2, 1, 3)
        assert sample("grpc_server_handling_seconds_count", **submit_labels) >= 3

        # Queue depth before any worker: every submitted job is ready.
        def depth(job_type: str, state: str) -> float:
            return sample("orch_queue_depth", tenant="acme", job_type=job_type, state=state)

        await eventually(
            lambda: depth(ok_type, "ready") == OK_JOBS and depth(dead_type, "ready") == DEAD_JOBS,
            "queue depth shows the submitted jobs",
        )
        assert leases.queue_gauges.is_leader

        worker = Worker(
            leases_target,
            token=make_token("acme", ("orch:work",), subject="metrics-worker"),
            max_reconnect_attempts=3,
        )

        @worker.handler(ok_type)
        async def succeed(job: Any) -> dict[str, Any]:
            return {"ok": True}

        @worker.handler(dead_type)
        async def broken(job: Any) -> dict[str, Any]:
            raise ParseError("unexpected '<' at 1:1")

        dead_letter_before = sample(
            "orch_dead_letter_entries", tenant="acme", error_class="parse_error"
        )
        assert dead_letter_before == 0  # a database of its own
        task = asyncio.create_task(worker.run())
        try:
            with psycopg.connect(own_database, autocommit=True) as conn:

                def finished() -> bool:
                    states = conn.execute(
                        "SELECT job_type, state, count(*) FROM orchestrator.jobs"
                        " GROUP BY job_type, state"
                    ).fetchall()
                    return sorted(states) == sorted(
                        [(ok_type, "succeeded", OK_JOBS), (dead_type, "dead", DEAD_JOBS)]
                    )

                await eventually(finished, "the workload finishes")
        finally:
            async with asyncio.timeout(WAIT_S):
                await worker.drain()
                await task

        # Run durations: one observation per completed job, none for the dead ones.
        await eventually(
            lambda: sample("orch_job_run_duration_seconds_count", job_type=ok_type) == OK_JOBS,
            "run-duration count equals completed jobs",
        )
        assert sample("orch_job_run_duration_seconds_count", job_type=dead_type) == 0
        assert sample("orch_job_run_duration_seconds_sum", job_type=ok_type) >= 0
        # Start latency: one observation per lease (each job was leased once).
        assert sample("orch_job_start_latency_seconds_count", job_type=ok_type) == OK_JOBS
        assert sample("orch_job_start_latency_seconds_count", job_type=dead_type) == DEAD_JOBS

        # A snapshot taken after the workload: the queue is empty, the dead letters counted.
        taken = leases.queue_gauges.snapshots
        await eventually(
            lambda: leases.queue_gauges.snapshots > taken + 1, "a fresh queue snapshot"
        )
        assert series("orch_queue_depth", job_type=ok_type) == []
        assert series("orch_queue_depth", job_type=dead_type) == []
        assert (
            sample("orch_dead_letter_entries", tenant="acme", error_class="parse_error")
            == DEAD_JOBS
        )

        # The audit chain catches up with every event of the workload.
        assert chainer.is_leader

        def chain_caught_up() -> bool:
            return (
                sample("orch_audit_chain_lag_events") == 0
                and sample("orch_audit_chain_lag_seconds") == 0
                and chainer.chained > 0
            )

        await eventually(chain_caught_up, "the audit chain lag returns to zero")
        measured = chainer.lag_measurements
        await eventually(lambda: chainer.lag_measurements > measured, "a fresh lag measurement")
        assert sample("orch_audit_chain_lag_events") == 0
        # ... and the same measurement from an older cursor does see the workload's events.
        from orchestrator_pg import Database, MetricsReader

        db = Database(own_database)
        await db.open()
        try:
            behind = await MetricsReader(db).audit_chain_lag(0)
        finally:
            await db.close()
        assert behind.events >= OK_JOBS + DEAD_JOBS
        assert behind.oldest_unchained_at is not None
