"""End to end: a 2,000-job DAG served by 4 worker processes, one of them SIGKILLed while it
holds leases. Every job must end succeeded exactly once, and the killed worker's jobs must be
leased again by the others."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from pathlib import Path

import grpc
import psycopg
import pytest

from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2
from tests.conftest import Stub
from tests.e2e._worker_proc import spawn

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
CONCURRENCY = 20
RUN_TIMEOUT_S = 120


def _dag(suffix: str) -> list[resources_pb2.JobSpec]:
    """400 ingest → 800 VEX (one parent each) → 800 policy (one parent each) = 2,000 jobs."""
    a, b, c = (f"e2e.{level}.{suffix}" for level in "abc")
    jobs = [resources_pb2.JobSpec(key=f"a{i}", job_type=a) for i in range(400)]
    jobs += [
        resources_pb2.JobSpec(key=f"b{i}", job_type=b, depends_on=[f"a{i % 400}"])
        for i in range(800)
    ]
    jobs += [
        resources_pb2.JobSpec(key=f"c{i}", job_type=c, depends_on=[f"b{i}"]) for i in range(800)
    ]
    return jobs


def _start_worker(target: str, token: str, worker_id: str, job_types: list[str], log):
    return spawn(target, token, worker_id, CONCURRENCY, job_types, log)


async def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)


async def test_sigkilled_worker_loses_nothing_and_completes_nothing_twice(
    channel: grpc.aio.Channel, leases_target: str, make_token, database_url: str, tmp_path
):
    suffix = uuid.uuid4().hex[:8]
    operator = Stub(channel, make_token("acme"))
    created = await operator.CreateRun(
        scheduler_pb2.CreateRunRequest(name=f"e2e-{suffix}", jobs=_dag(suffix))
    )
    run_id = created.run.id
    assert len(created.jobs) == 2000
    job_types = sorted({j.job_type for j in created.jobs})
    worker_token = make_token("acme", ("orch:work",), subject="e2e-fleet")
    ids = [f"e2e-{suffix}-w{n}" for n in range(WORKERS)]
    logs = {wid: (tmp_path / f"{wid}.log").open("wb") for wid in ids}
    procs = {
        wid: _start_worker(leases_target, worker_token, wid, job_types, logs[wid]) for wid in ids
    }
    victim = ids[1]
    db = psycopg.connect(database_url, autocommit=True)
    try:

        def succeeded() -> int:
            return db.execute(
                "SELECT count(*) FROM orchestrator.jobs WHERE run_id = %s AND state = 'succeeded'",
                (run_id,),
            ).fetchone()[0]

        def victim_leases() -> list[uuid.UUID]:
            return [
                r[0]
                for r in db.execute(
                    "SELECT id FROM orchestrator.jobs WHERE run_id = %s AND state = 'leased'"
                    " AND worker_id = %s",
                    (run_id, victim),
                ).fetchall()
            ]

        await _wait_for(lambda: succeeded() >= 400, 60, "400 jobs to succeed")
        await _wait_for(lambda: len(victim_leases()) > 0, 30, f"{victim} to hold leases")
        held = victim_leases()
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait(timeout=10)
        killed_at = time.time()

        run = None

        def finished() -> bool:
            nonlocal run
            state = db.execute(
                "SELECT state FROM orchestrator.runs WHERE id = %s", (run_id,)
            ).fetchone()[0]
            run = state
            return state in ("succeeded", "failed", "canceled")

        await _wait_for(finished, RUN_TIMEOUT_S, "the run to finish")
        reply = await operator.GetRun(scheduler_pb2.GetRunRequest(run_id=run_id))
        assert reply.run.state == common_pb2.RUN_STATE_SUCCEEDED, dict(reply.run.job_counts)
        assert dict(reply.run.job_counts) == {"succeeded": 2000}

        # exactly one job.succeeded event per job: nothing lost, nothing completed twice
        per_job = db.execute(
            "SELECT job_id, count(*) FROM orchestrator.events"
            " WHERE run_id = %s AND type = 'job.succeeded' GROUP BY job_id",
            (run_id,),
        ).fetchall()
        assert len(per_job) == 2000
        assert {n for _, n in per_job} == {1}

        # The killed worker's unfinished jobs went back to ready (released when its stream
        # dropped, or by the watchdog at lease expiry) and were leased by another worker.
        assert held, "the victim held no lease when it was killed"
        chains: dict[str, list[tuple]] = {}
        for job_id, type_, reason, worker, at in db.execute(
            "SELECT job_id::text, type, reason, data->>'worker_id', extract(epoch FROM occurred_at)"
            " FROM orchestrator.events WHERE run_id = %s AND job_id IS NOT NULL ORDER BY seq",
            (run_id,),
        ).fetchall():
            chains.setdefault(job_id, []).append((type_, reason, worker, float(at)))
        orphaned = {
            job_id: chain
            for job_id, chain in chains.items()
            if any(
                t == "job.leased" and w == victim and chain[i + 1][0] != "job.succeeded"
                for i, (t, _r, w, _at) in enumerate(chain)
            )
        }
        assert orphaned, "no job was left unfinished by the killed worker"
        for job_id, chain in orphaned.items():
            i = next(
                i
                for i, (t, _r, w, _at) in enumerate(chain)
                if t == "job.leased" and w == victim and chain[i + 1][0] != "job.succeeded"
            )
            released_type, released_reason, _w, released_at = chain[i + 1]
            assert released_type == "job.retrying", chain
            assert released_reason in ("worker_disconnected", "lease_expired"), chain
            assert released_at >= killed_at - 1, chain
            assert any(t == "job.leased" and w != victim for t, _r, w, _at in chain[i + 2 :])
            (result_worker,) = db.execute(
                "SELECT result->>'worker' FROM orchestrator.jobs WHERE id = %s", (job_id,)
            ).fetchone()
            assert result_worker != victim
    finally:
        db.close()
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for log in logs.values():
            log.close()
