"""End to end: a backlog queued before any worker connects, burned by SDK worker processes
with real handler durations (20-60 ms). From the event history: no worker ever held more
leases than the capacity it declared, no lease expired, and every job succeeded once.

The sizes vary per run (seeded, printed), so the bound is not checked at one lucky shape."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from bench.backlog import LeaseEvent, burndown_from_history, lease_events, peak_leases
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2
from tests.conftest import Stub
from tests.e2e._worker_proc import spawn

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SUBMIT_BATCH = 500


def _start_worker(target: str, token: str, wid: str, capacity: int, job_type: str, logs: Path):
    with (logs / f"{wid}.log").open("wb") as log:
        return spawn(target, token, wid, capacity, [job_type], log)


def _succeeded(db: psycopg.Connection, job_type: str) -> int:
    return db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE job_type = %s AND state = 'succeeded'",
        (job_type,),
    ).fetchone()[0]


@pytest.mark.timeout(600)
async def test_backlog_burn_down_never_exceeds_declared_capacity(
    channel, leases_target: str, make_token, database_url: str, tmp_path
):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    backlog = rng.randint(1_500, 3_000)
    capacities = [rng.randint(3, 20) for _ in range(rng.randint(2, 3))]
    print(f"seed={seed} backlog={backlog} capacities={capacities}")
    job_type = f"e2e.backlog.{uuid.uuid4().hex[:8]}"
    operator = Stub(channel, make_token("acme"))
    for offset in range(0, backlog, SUBMIT_BATCH):
        specs = [
            resources_pb2.JobSpec(job_type=job_type, key=f"k{offset + i}")
            for i in range(min(SUBMIT_BATCH, backlog - offset))
        ]
        await operator.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=specs))
    token = make_token("acme", ("orch:work",), subject="e2e-backlog-fleet")
    workers = {f"{job_type}-w{n}": capacity for n, capacity in enumerate(capacities)}
    procs = [
        _start_worker(leases_target, token, wid, c, job_type, tmp_path)
        for wid, c in workers.items()
    ]
    try:
        with psycopg.connect(database_url, autocommit=True) as db:
            # the leases service runs in this event loop: wait without blocking it
            deadline = time.monotonic() + 480
            while _succeeded(db, job_type) < backlog:
                assert time.monotonic() < deadline, "the backlog did not burn down in 480 s"
                await asyncio.sleep(0.5)
            result = burndown_from_history(db, job_type, backlog)
            peaks = peak_leases(lease_events(db, job_type))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    assert set(peaks) == set(workers)
    for wid, capacity in workers.items():
        assert 0 < peaks[wid] <= capacity, (wid, peaks[wid], capacity)
    assert result.lease_expired == 0
    assert result.succeeded_twice == 0


def test_peak_leases_replays_transitions_in_order():
    events = [
        LeaseEvent("a", True, "w1"),
        LeaseEvent("b", True, "w1"),
        LeaseEvent("c", True, "w2"),
        LeaseEvent("a", False, ""),
        LeaseEvent("d", True, "w1"),
        LeaseEvent("e", True, "w1"),
        LeaseEvent("b", False, ""),
        LeaseEvent("zz", False, ""),  # ended a lease leased before the history began
        LeaseEvent("a", True, "w2"),  # the retry of a, on another worker
    ]
    assert peak_leases(events) == {"w1": 3, "w2": 2}
