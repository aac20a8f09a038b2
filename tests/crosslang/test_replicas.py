"""Two replicas of every service (`scripts/stack.py up --replicas 2`, real processes on one
PostgreSQL and Redis) and Python, Go and Rust workers that reach the leases replicas through
one multi-address target.

What shows which replica served a job: each leases process's own Prometheus counters
(``orch_leases_claimed_total{job_type}`` on its metrics port). Each SDK serves its own job
types, so a replica's count for a type says that SDK's worker had Work streams on it. The
leases replicas drain every Work stream after ~2 s (ORCH_WORK_STREAM_MAX_AGE_S), so each
worker reconnects often and its round-robin channel moves the next stream to the other
replica. Then one leases replica is SIGKILLed mid-run and the run still finishes, every job
succeeded exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import grpc
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2
from stella_orchestrator.targets import channel_options, channel_target
from tests._stack import STEP_TIMEOUT_S, STRIDE, stack
from tests._stack import stack_env as _stack_env
from tests.conftest import Stub, migrated_database

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
SDKS = ("python", "go", "rust")
REPLICAS = 2
JOBS_PER_SDK = 160
HANDLER_DELAY_S = 0.15  # with concurrency 4: ~6 s of work per SDK and run, ~3 stream ages
CONCURRENCY = 4


@pytest.fixture
def replica_db(admin_url: str) -> Iterator[str]:
    # A database of its own: the session database's in-process leases service (other
    # tests) would otherwise take part in leadership and expiry.
    with migrated_database(admin_url, "replicas", ("acme",)) as url:
        yield url


@pytest.fixture
def stack_env(replica_db: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    extra = {
        "ORCH_WORK_STREAM_MAX_AGE_S": "2",
        "ORCH_LEASE_TTL_S": "6",
        "ORCH_SHUTDOWN_GRACE_S": "2",
    }
    with _stack_env(replica_db, tmp_path / "run", replicas=REPLICAS, extra=extra) as env:
        yield env


def _status(env: dict[str, str]) -> dict[tuple[str, int], tuple[int, str]]:
    """``stack.py status`` as {(service, replica): (port, health)}."""
    rows = {}
    for line in stack(env, "status").splitlines()[1:]:
        service, replica, port, _pid, health = line.split(maxsplit=4)
        rows[(service, int(replica))] = (int(port), health)
    return rows


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def _leases_metrics(port: int) -> dict[tuple[str, str], float]:
    """{(sample name, job_type or ""): value} of one leases replica."""
    text = _scrape(port)
    return {
        (sample.name, sample.labels.get("job_type", "")): sample.value
        for family in text_string_to_metric_families(text)
        if family.name in ("orch_leases_claimed", "orch_leases_completed")
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def _start(cmd: list[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "RUST_LOG": "info"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _served(port: int, method: str) -> float:
    """How many ``method`` calls one replica answered (its ``grpc_server_handled_total``)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(_scrape(port))
        if family.name == "grpc_server_handled"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("grpc_method") == method
    )


def _rest_get(port: int, path: str, token: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/orchestrator{path}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return int(reply.status)


async def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.3)


def _run_state(db: psycopg.Connection, run_id: str) -> str:
    return db.execute("SELECT state FROM orchestrator.runs WHERE id = %s", (run_id,)).fetchone()[0]


# A run stays 'pending' until its first job is leased: on a loaded machine the workers may
# not have connected yet when the test first looks, so it waits for an end state.
RUN_ENDED = ("succeeded", "failed", "canceled")


def _succeeded_once(db: psycopg.Connection, run_id: str, jobs: int) -> None:
    per_job = db.execute(
        "SELECT job_id, count(*) FROM orchestrator.events"
        " WHERE run_id = %s AND type = 'job.succeeded' GROUP BY job_id",
        (run_id,),
    ).fetchall()
    assert len(per_job) == jobs
    assert {n for _, n in per_job} == {1}
    states = db.execute(
        "SELECT state, count(*) FROM orchestrator.jobs WHERE run_id = %s GROUP BY state",
        (run_id,),
    ).fetchall()
    assert dict(states) == {"succeeded": jobs}


async def test_two_replicas_of_everything_serve_workers_of_three_sdks_and_survive_a_kill(
    stack_env: dict[str, str],
    replica_db: str,
    make_token,
    go_worker_bin: Path,
    rust_worker_bin: Path,
    tmp_path: Path,
) -> None:
    env = stack_env
    stack(env, "up", "--replicas", str(REPLICAS))
    status = _status(env)
    services = ("scheduler", "leases", "ratelimit", "audit", "gateway")
    assert sorted(status) == sorted((s, r) for s in services for r in range(REPLICAS))
    assert {health for _port, health in status.values()} == {"SERVING"}, status
    base = int(env["ORCH_LEASES_GRPC_PORT"])
    assert [status[("leases", r)][0] for r in range(REPLICAS)] == [base, base + STRIDE]

    leases_target = ",".join(f"127.0.0.1:{status[('leases', r)][0]}" for r in range(REPLICAS))
    scheduler_target = ",".join(f"127.0.0.1:{status[('scheduler', r)][0]}" for r in range(REPLICAS))
    metrics_ports = [int(env["ORCH_LEASES_METRICS_PORT"]) + STRIDE * r for r in range(REPLICAS)]
    suffix = uuid.uuid4().hex[:8]
    job_type = {sdk: f"replicas.{sdk}.{suffix}" for sdk in SDKS}
    token = make_token("acme", ("orch:work",), subject="replicas-fleet")
    bins = {"go": go_worker_bin, "rust": rust_worker_bin}
    logs: list[IO[bytes]] = []
    workers: dict[str, subprocess.Popen[bytes]] = {}
    for sdk in SDKS:
        worker_id = f"replicas-{sdk}-{suffix}"
        if sdk == "python":
            cmd = [sys.executable, "-m", "tests.crosslang._python_worker", leases_target, token]
            cmd += [worker_id, str(CONCURRENCY), job_type[sdk], str(HANDLER_DELAY_S)]
        else:
            cmd = [str(bins[sdk]), "-target", leases_target, "-token", token]
            cmd += ["-worker-id", worker_id, "-concurrency", str(CONCURRENCY)]
            cmd += ["-types", job_type[sdk], "-delay", f"{int(HANDLER_DELAY_S * 1000)}ms"]
        log = (tmp_path / f"{worker_id}.log").open("wb")
        logs.append(log)
        workers[sdk] = _start(cmd, log)

    def jobs(run: int) -> list[resources_pb2.JobSpec]:
        return [
            resources_pb2.JobSpec(key=f"{sdk}-{run}-{i}", job_type=job_type[sdk])
            for sdk in SDKS
            for i in range(JOBS_PER_SDK)
        ]

    db = psycopg.connect(replica_db, autocommit=True)
    channel = grpc.aio.insecure_channel(channel_target(scheduler_target), channel_options())
    operator = Stub(channel, make_token("acme"))
    try:
        # Run 1: every SDK's jobs are leased through BOTH leases replicas.
        first = await operator.CreateRun(
            scheduler_pb2.CreateRunRequest(name=f"replicas-1-{suffix}", jobs=jobs(1))
        )
        run1 = first.run.id
        await _wait_for(
            lambda: _run_state(db, run1) in RUN_ENDED, STEP_TIMEOUT_S, "run 1 to finish"
        )
        _succeeded_once(db, run1, len(SDKS) * JOBS_PER_SDK)
        per_replica = [_leases_metrics(port) for port in metrics_ports]
        for sdk in SDKS:
            claimed = [m.get(("orch_leases_claimed_total", job_type[sdk]), 0) for m in per_replica]
            assert all(n > 0 for n in claimed), f"{sdk}: claims per leases replica {claimed}"
            assert sum(claimed) >= JOBS_PER_SDK, (sdk, claimed)
        completed = [m.get(("orch_leases_completed_total", ""), 0) for m in per_replica]
        assert all(n > 0 for n in completed), completed
        assert sum(completed) >= len(SDKS) * JOBS_PER_SDK

        # Each gateway replica reaches both scheduler replicas through its one round-robin
        # target (GetRun is called by nobody else so far).
        scheduler_metrics = [
            int(env["ORCH_SCHEDULER_METRICS_PORT"]) + STRIDE * r for r in range(REPLICAS)
        ]
        assert [_served(port, "GetRun") for port in scheduler_metrics] == [0] * REPLICAS
        reader = make_token("acme", ("orch:read",))
        for r in range(REPLICAS):
            for _ in range(6):
                assert _rest_get(status[("gateway", r)][0], f"/runs/{run1}", reader) == 200
        served = [_served(port, "GetRun") for port in scheduler_metrics]
        assert all(n > 0 for n in served), f"GetRun per scheduler replica: {served}"
        assert sum(served) == 6 * REPLICAS

        # Run 2: SIGKILL leases replica 0 while it runs; the workers carry on through
        # replica 1 (the killed replica's leases expire and are leased again).
        second = await operator.CreateRun(
            scheduler_pb2.CreateRunRequest(name=f"replicas-2-{suffix}", jobs=jobs(2))
        )
        run2 = second.run.id

        def done2() -> int:
            return db.execute(
                "SELECT count(*) FROM orchestrator.jobs WHERE run_id = %s AND state = 'succeeded'",
                (run2,),
            ).fetchone()[0]

        await _wait_for(lambda: done2() >= JOBS_PER_SDK // 2, STEP_TIMEOUT_S, "run 2 to start")
        victim = int((Path(env["ORCH_STATE_DIR"]) / "leases-0.pid").read_text())
        os.kill(victim, signal.SIGKILL)
        completed_at_kill = _leases_metrics(metrics_ports[1])[("orch_leases_completed_total", "")]
        assert done2() < len(SDKS) * JOBS_PER_SDK, "run 2 finished before the kill"
        await _wait_for(
            lambda: _run_state(db, run2) in RUN_ENDED, STEP_TIMEOUT_S, "run 2 to finish"
        )
        reply = await operator.GetRun(scheduler_pb2.GetRunRequest(run_id=run2))
        assert reply.run.state == common_pb2.RUN_STATE_SUCCEEDED, dict(reply.run.job_counts)
        _succeeded_once(db, run2, len(SDKS) * JOBS_PER_SDK)
        after = _leases_metrics(metrics_ports[1])[("orch_leases_completed_total", "")]
        assert after > completed_at_kill, "replica 1 completed nothing after the kill"

        status = _status(env)
        assert status[("leases", 0)][1].startswith("DOWN"), status
        del status[("leases", 0)]
        assert {health for _port, health in status.values()} == {"SERVING"}, status
        assert all(proc.poll() is None for proc in workers.values()), "a worker exited"
    finally:
        await channel.close()
        db.close()
        for proc in workers.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in workers.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for log in logs:
            log.close()
