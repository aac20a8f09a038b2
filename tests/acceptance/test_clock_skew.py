"""A replica whose clock runs 30 s ahead expires no other replica's lease early.

The lease watchdog of one replica checks ``lease_expires_at`` written by another; with each
replica on its own wall clock, a watchdog 30 s ahead would expire every lease shorter than
30 s the moment it is granted (those jobs would run twice). PostgreSQL's clock is the
authority (orchestrator_pg._clock): here the watchdog leader runs under libfaketime +30 s
in its own process, the worker is served by an unskewed replica, and no lease expires.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest

from bench.ports import free_port
from orchestrator_grpckit import mint_dev_token
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2
from stella_orchestrator.worker import Job, Worker
from tests.conftest import DEV_SECRET, Stub, migrated_database, service_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SKEW = "+30s"
LEASE_TTL_S = 10.0  # far shorter than the skew: an own-clock watchdog would expire them all
JOBS = 120
HANDLER_S = 0.5
TENANT = "acme"


@pytest.fixture
def skew_db(admin_url: str) -> Iterator[str]:
    # Its own database: advisory locks are per database, so the session's leases service
    # cannot take the watchdog's leadership from the skewed replica.
    with migrated_database(admin_url, "orch_skew", (TENANT,)) as url:
        yield url


def _metric(port: int, name: str, labels: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(f"{name}{{{labels}}} " if labels else f"{name} "):
                return float(line.split()[-1])
    return None


async def _until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


def _start_skewed_leases(url: str, log) -> tuple[subprocess.Popen[bytes], int]:
    faketime = shutil.which("faketime")
    assert faketime, "faketime is missing: `scripts/services.sh start` installs it (Debian)"
    metrics_port = free_port()
    env = {
        **os.environ,
        "ORCH_DATABASE_URL": url,
        "ORCH_LEASES_GRPC_PORT": str(free_port()),
        "ORCH_LEASES_METRICS_PORT": str(metrics_port),
        "ORCH_AUTH_HS256_SECRET": DEV_SECRET,
        "ORCH_LEASE_TTL_S": str(LEASE_TTL_S),
        "ORCH_WATCHDOG_INTERVAL_S": "0.2",
        "ORCH_SHUTDOWN_GRACE_S": "1",
        # Only the wall clock runs ahead; asyncio's monotonic clock stays sane.
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    proc = subprocess.Popen(
        [faketime, "-f", SKEW, sys.executable, "-m", "orchestrator_leases"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        # faketime forks the service and waits for it, but does not pass signals on: the
        # service is stopped through its process group, or it outlives the test.
        start_new_session=True,
    )
    return proc, metrics_port


def _stop_group(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM to the process group (faketime and the service it runs), then waits until
    every member is gone; SIGKILL to what is left after ``timeout_s``."""

    def signal_group(sig: signal.Signals) -> bool:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return False
        return True

    signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while signal_group(signal.SIGCONT) and time.monotonic() < deadline:
        proc.poll()  # reaps faketime once it exits, so the group can empty
        time.sleep(0.1)
    signal_group(signal.SIGKILL)
    proc.wait()


async def test_a_watchdog_30s_ahead_expires_no_lease_early(skew_db: str, tmp_path) -> None:
    from orchestrator_leases import LeaseSettings
    from orchestrator_leases import build_service as build_leases
    from orchestrator_scheduler import build_service as build_scheduler

    log = (tmp_path / "skewed-leases.log").open("wb")
    skewed, metrics_port = _start_skewed_leases(skew_db, log)
    try:

        def skewed_leads() -> bool:
            assert skewed.poll() is None, (tmp_path / "skewed-leases.log").read_text()
            try:
                return _metric(metrics_port, "orch_leader", 'loop="lease_watchdog"') == 1
            except OSError:
                return False

        await _until(skewed_leads, 120, "the skewed replica to lead the lease watchdog")
        offset = _metric(metrics_port, "orch_clock_offset_seconds", "")
        assert offset is not None
        assert -31 < offset < -29, offset

        settings = LeaseSettings(lease_ttl_s=LEASE_TTL_S, watchdog_interval_s=0.2)
        async with (
            build_scheduler(service_config("scheduler", skew_db), schedule_firing=False) as sched,
            build_leases(service_config("leases", skew_db), settings=settings) as leases,
        ):
            await sched.start()
            await leases.start()
            try:
                job_type = f"skew.{uuid.uuid4().hex[:8]}"
                async with grpc.aio.insecure_channel(f"127.0.0.1:{sched.port}") as channel:
                    token = mint_dev_token(DEV_SECRET, "op", [TENANT], ["orch:operate"])
                    reply = await Stub(channel, token).SubmitJobs(
                        scheduler_pb2.SubmitJobsRequest(
                            jobs=[resources_pb2.JobSpec(job_type=job_type) for _ in range(JOBS)]
                        )
                    )
                ids = [j.id for j in reply.jobs]

                async def handle(job: Job) -> None:
                    await asyncio.sleep(HANDLER_S)

                worker = Worker(
                    f"127.0.0.1:{leases.port}",
                    token=mint_dev_token(DEV_SECRET, "fleet", [TENANT], ["orch:work"]),
                    tenant=TENANT,
                    concurrency=20,
                    drain_timeout_s=5,
                )
                worker.add_handler(job_type, handle)
                running = asyncio.create_task(worker.run())
                with psycopg.connect(skew_db, autocommit=True) as db:

                    def states() -> dict[str, int]:
                        return dict(
                            db.execute(
                                "SELECT state, count(*) FROM orchestrator.jobs"
                                " WHERE id = ANY(%s::uuid[]) GROUP BY state",
                                (ids,),
                            ).fetchall()
                        )

                    try:
                        await _until(lambda: states() == {"succeeded": JOBS}, 300, "every job")
                    finally:
                        worker.stop()
                        async with asyncio.timeout(60):
                            await running
                    attempts = db.execute(
                        "SELECT attempt, count(*) FROM orchestrator.jobs"
                        " WHERE id = ANY(%s::uuid[]) GROUP BY attempt",
                        (ids,),
                    ).fetchall()
                    expired = db.execute(
                        "SELECT count(*) FROM orchestrator.events WHERE job_id = ANY(%s::uuid[])"
                        " AND (reason = 'lease_expired' OR data::text LIKE '%%lease_expired%%')",
                        (ids,),
                    ).fetchone()[0]
                assert attempts == [(1, JOBS)], attempts
                assert expired == 0
                assert _metric(metrics_port, "orch_leases_expired_total", "") in (None, 0.0)
                assert skewed_leads(), "the skewed replica led the watchdog throughout"
            finally:
                await leases.stop()
                await sched.stop()
    finally:
        _stop_group(skewed)
        log.close()
