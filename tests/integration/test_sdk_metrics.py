"""The Python worker SDK's Prometheus metrics, by value (docs/metrics.md, "Worker SDKs").

A worker with ``metrics_port=0`` runs against the real leases service and scheduler; its
``/metrics`` endpoint, scraped over HTTP and parsed, must count exactly the jobs it started,
finished and failed (by error class), observe one handler duration per job and show nothing
in flight once they are done. Without a port (and without ``STELLA_METRICS_PORT``) the
worker serves nothing.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stella.orchestrator.v1 import resources_pb2, scheduler_pb2
from stella_orchestrator.worker import ParseError, Worker

pytestmark = pytest.mark.integration

WAIT_S = 60.0
OK_JOBS = 5
BAD_JOBS = 3


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_the_worker_counts_its_jobs_on_its_metrics_port(
    scheduler, leases_target: str, make_token, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STELLA_METRICS_PORT", raising=False)
    ok_type, bad_type = (f"sdkm{uuid.uuid4().hex[:10]}.{k}" for k in ("ok", "bad"))
    token = make_token("acme", ("orch:work",), subject="sdk-metrics")
    worker = Worker(leases_target, token=token, metrics_port=0, max_reconnect_attempts=3)

    async def ok(job: Any) -> None:
        return None

    async def malformed(job: Any) -> None:
        raise ParseError("unexpected '<'")

    worker.add_handler(ok_type, ok)
    worker.add_handler(bad_type, malformed)

    for job_type, n in ((ok_type, OK_JOBS), (bad_type, BAD_JOBS)):
        spec = resources_pb2.JobSpec(job_type=job_type)
        spec.retry_policy.max_attempts = 1
        await scheduler.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=[spec] * n))

    task = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + WAIT_S
        while worker.stats.completed + worker.stats.failed < OK_JOBS + BAD_JOBS:
            assert time.monotonic() < deadline, f"jobs not done: {worker.stats}"
            await asyncio.sleep(0.05)
        assert worker.metrics.bound_port is not None
        samples = await asyncio.to_thread(scrape, worker.metrics.bound_port)
    finally:
        async with asyncio.timeout(WAIT_S):
            await worker.drain()
            await task

    def value(name: str, job_type: str, **labels: str) -> float:
        key = tuple(sorted({"sdk": "python", "job_type": job_type, **labels}.items()))
        return samples.get((name, key), 0.0)

    assert value("stella_worker_jobs_started_total", ok_type) == OK_JOBS
    assert value("stella_worker_jobs_started_total", bad_type) == BAD_JOBS
    assert value("stella_worker_jobs_succeeded_total", ok_type) == OK_JOBS
    assert value("stella_worker_jobs_succeeded_total", bad_type) == 0
    assert value("stella_worker_jobs_failed_total", bad_type, error_class="parse_error") == BAD_JOBS
    assert value("stella_worker_handler_duration_seconds_count", ok_type) == OK_JOBS
    assert value("stella_worker_handler_duration_seconds_count", bad_type) == BAD_JOBS
    assert value("stella_worker_jobs_in_flight", ok_type) == 0
    # The endpoint closed with run().
    assert worker.metrics.bound_port is None


def test_metrics_are_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STELLA_METRICS_PORT", raising=False)
    assert not Worker("127.0.0.1:1", token="t").metrics.enabled
    monkeypatch.setenv("STELLA_METRICS_PORT", "9464")
    assert Worker("127.0.0.1:1", token="t").metrics.port == 9464
