"""Cross-language end to end: Python, Go and Rust workers against the real leases service
and scheduler (real PostgreSQL, in-process services, 3 s lease TTL).

Each worker runs the same echo handler (see _python_worker.py and the Go/Rust example
workers' -types mode): it reports 50 % progress, records one artifact whose bytes are
``<sdk>:<job id>:<key>`` and returns the sdk and the digest it computed. The tests
recompute every digest here.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import time
import uuid
from typing import Any

import grpc
import psycopg
import pytest

from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2
from stella_orchestrator.worker import json_digest
from tests.conftest import LEASE_TTL_S, Stub

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]
SDKS = ("python", "go", "rust")
RUN_TIMEOUT_S = 180


async def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)


def _run_state(db: psycopg.Connection, run_id: str) -> str:
    return db.execute("SELECT state FROM orchestrator.runs WHERE id = %s", (run_id,)).fetchone()[0]


def _check_jobs(db: psycopg.Connection, run_id: str, sdk_of_type: dict[str, str]) -> None:
    """Every job succeeded exactly once, by a worker of its type's language, with a result
    digest and an artifact digest that verify here."""
    rows = db.execute(
        "SELECT id::text, key, job_type, state, result, result_digest, attempt"
        " FROM orchestrator.jobs WHERE run_id = %s",
        (run_id,),
    ).fetchall()
    assert rows
    succeeded = dict(
        db.execute(
            "SELECT job_id::text, count(*) FROM orchestrator.events"
            " WHERE run_id = %s AND type = 'job.succeeded' GROUP BY job_id",
            (run_id,),
        ).fetchall()
    )
    artifacts: dict[str, list[tuple[Any, ...]]] = {}
    for job_id, attempt, name, size, digest in db.execute(
        "SELECT job_id::text, attempt, name, size_bytes, digest FROM orchestrator.artifacts"
        " WHERE run_id = %s",
        (run_id,),
    ).fetchall():
        artifacts.setdefault(job_id, []).append((attempt, name, size, digest))
    for job_id, key, job_type, state, result, result_digest, attempt in rows:
        sdk = sdk_of_type[job_type]
        assert state == "succeeded", (job_id, state)
        assert succeeded.get(job_id) == 1, (job_id, succeeded.get(job_id))
        assert result["sdk"] == sdk, result
        assert result["key"] == key, result
        # The worker's canonical-JSON digest of its result is the one Python computes.
        assert result_digest == json_digest(result), (sdk, result)
        content = f"{sdk}:{job_id}:{key}".encode()
        expected = "sha256:" + hashlib.sha256(content).hexdigest()
        assert result["artifact_digest"] == expected
        assert (attempt, "echo.txt", len(content), expected) in artifacts[job_id], artifacts.get(
            job_id
        )


@pytest.mark.parametrize("sdk", SDKS)
async def test_each_sdk_runs_jobs_beyond_the_lease_ttl_with_artifacts(
    sdk: str, channel: grpc.aio.Channel, make_token, launch, database_url: str
) -> None:
    """A job that runs longer than the lease TTL succeeds on its first lease: the SDK's
    heartbeats (derived from the TTL in Welcome) kept it alive."""
    job_type = f"xl{uuid.uuid4().hex[:8]}.{sdk}"
    operator = Stub(channel, make_token("acme"))
    created = await operator.CreateRun(
        scheduler_pb2.CreateRunRequest(
            name=f"xl-{sdk}",
            jobs=[resources_pb2.JobSpec(key=f"k{i}", job_type=job_type) for i in range(6)],
        )
    )
    run_id = created.run.id
    launch(sdk, f"xl-{sdk}-{uuid.uuid4().hex[:6]}", [job_type], delay_s=LEASE_TTL_S * 1.7)
    with psycopg.connect(database_url, autocommit=True) as db:
        await _wait_for(
            lambda: _run_state(db, run_id) in ("succeeded", "failed", "canceled"),
            60,
            f"the {sdk} worker to finish the run",
        )
        assert _run_state(db, run_id) == "succeeded"
        _check_jobs(db, run_id, {job_type: sdk})
        retried = db.execute(
            "SELECT count(*) FROM orchestrator.events WHERE run_id = %s AND type = 'job.retrying'",
            (run_id,),
        ).fetchone()[0]
        assert retried == 0, "a lease ran out although the worker heartbeats"
        attempts = db.execute(
            "SELECT DISTINCT attempt FROM orchestrator.jobs WHERE run_id = %s", (run_id,)
        ).fetchall()
        assert attempts == [(1,)]
        # The handler's progress() reached the ledger (it rides the Work stream).
        progress = db.execute(
            "SELECT DISTINCT progress_percent, progress_message FROM orchestrator.jobs"
            " WHERE run_id = %s",
            (run_id,),
        ).fetchall()
        assert progress == [(50.0, f"{sdk} halfway")]


def _dag(suffix: str) -> tuple[list[resources_pb2.JobSpec], dict[str, str]]:
    """60 Python jobs → 120 Go jobs → 60 Rust jobs (each with one parent)."""
    types = {sdk: f"xl.{sdk}.{suffix}" for sdk in SDKS}
    jobs = [resources_pb2.JobSpec(key=f"p{i}", job_type=types["python"]) for i in range(60)]
    jobs += [
        resources_pb2.JobSpec(key=f"g{i}", job_type=types["go"], depends_on=[f"p{i % 60}"])
        for i in range(120)
    ]
    jobs += [
        resources_pb2.JobSpec(key=f"r{i}", job_type=types["rust"], depends_on=[f"g{i}"])
        for i in range(60)
    ]
    return jobs, {t: sdk for sdk, t in types.items()}


async def test_one_dag_served_by_three_languages_survives_a_killed_go_worker(
    channel: grpc.aio.Channel, make_token, launch, database_url: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    jobs, sdk_of_type = _dag(suffix)
    type_of = {sdk: t for t, sdk in sdk_of_type.items()}
    operator = Stub(channel, make_token("acme"))
    created = await operator.CreateRun(
        scheduler_pb2.CreateRunRequest(name=f"xl-dag-{suffix}", jobs=jobs)
    )
    run_id = created.run.id
    victim = f"xl-go-victim-{suffix}"
    launch("python", f"xl-py-{suffix}", [type_of["python"]])
    # The victim's jobs take long enough that it surely holds leases when it is killed.
    victim_proc = launch("go", victim, [type_of["go"]], delay_s=1.0)
    launch("go", f"xl-go-{suffix}", [type_of["go"]])
    launch("rust", f"xl-rs-{suffix}", [type_of["rust"]])
    with psycopg.connect(database_url, autocommit=True) as db:

        def victim_leases() -> list[str]:
            return [
                r[0]
                for r in db.execute(
                    "SELECT id::text FROM orchestrator.jobs WHERE run_id = %s"
                    " AND state = 'leased' AND worker_id = %s",
                    (run_id, victim),
                ).fetchall()
            ]

        await _wait_for(lambda: len(victim_leases()) > 0, 60, "the Go victim to hold leases")
        held = victim_leases()
        victim_proc.send_signal(signal.SIGKILL)
        victim_proc.wait(timeout=10)
        await _wait_for(
            lambda: _run_state(db, run_id) in ("succeeded", "failed", "canceled"),
            RUN_TIMEOUT_S,
            "the run to finish",
        )
        reply = await operator.GetRun(scheduler_pb2.GetRunRequest(run_id=run_id))
        assert reply.run.state == common_pb2.RUN_STATE_SUCCEEDED, dict(reply.run.job_counts)
        assert dict(reply.run.job_counts) == {"succeeded": len(jobs)}
        _check_jobs(db, run_id, sdk_of_type)
        # The killed worker's leases went back and were finished by the other Go worker.
        for job_id in held:
            (worker,) = db.execute(
                "SELECT result->>'worker' FROM orchestrator.jobs WHERE id = %s", (job_id,)
            ).fetchone()
            assert worker != victim, job_id
            (retries,) = db.execute(
                "SELECT count(*) FROM orchestrator.events WHERE job_id = %s"
                " AND type = 'job.retrying' AND reason IN ('worker_disconnected', 'lease_expired')",
                (job_id,),
            ).fetchone()
            assert retries >= 1, job_id
        served = {
            sdk: n
            for sdk, n in db.execute(
                "SELECT result->>'sdk', count(*) FROM orchestrator.jobs WHERE run_id = %s"
                " GROUP BY 1",
                (run_id,),
            ).fetchall()
        }
        assert served == {"python": 60, "go": 120, "rust": 60}


@pytest.mark.parametrize("sdk", SDKS)
async def test_sigterm_drains_gracefully(
    sdk: str, channel: grpc.aio.Channel, make_token, launch, database_url: str
) -> None:
    """SIGTERM while jobs run: the worker stops taking work, lets its handlers finish,
    reports their results and exits 0; no job it held is retried."""
    job_type = f"xd{uuid.uuid4().hex[:8]}.{sdk}"
    operator = Stub(channel, make_token("acme"))
    created = await operator.CreateRun(
        scheduler_pb2.CreateRunRequest(
            name=f"xd-{sdk}",
            jobs=[resources_pb2.JobSpec(key=f"k{i}", job_type=job_type) for i in range(20)],
        )
    )
    run_id = created.run.id
    worker_id = f"xd-{sdk}-{uuid.uuid4().hex[:6]}"
    proc = launch(sdk, worker_id, [job_type], delay_s=1.5)
    with psycopg.connect(database_url, autocommit=True) as db:

        def running() -> list[str]:
            # Leased jobs whose handler has started (each handler reports 50 % first). A
            # leased job alone is not enough: the lease commits before the assignment
            # reaches the worker, and a worker told to drain in between releases it.
            return [
                r[0]
                for r in db.execute(
                    "SELECT id::text FROM orchestrator.jobs WHERE run_id = %s AND state = 'leased'"
                    " AND progress_percent IS NOT NULL",
                    (run_id,),
                ).fetchall()
            ]

        await _wait_for(lambda: len(running()) > 0, 120, f"the {sdk} worker to run handlers")
        held = running()
        proc.send_signal(signal.SIGTERM)
        await _wait_for(lambda: proc.poll() is not None, 120, f"the {sdk} worker to exit")
        assert proc.returncode == 0
        for job_id in held:
            state, worker, attempt = db.execute(
                "SELECT state, result->>'worker', attempt FROM orchestrator.jobs WHERE id = %s",
                (job_id,),
            ).fetchone()
            assert (state, worker, attempt) == ("succeeded", worker_id, 1), job_id
        # Jobs it never started stay ready for another worker.
        states = dict(
            db.execute(
                "SELECT state, count(*) FROM orchestrator.jobs WHERE run_id = %s GROUP BY 1",
                (run_id,),
            ).fetchall()
        )
        assert states.get("leased", 0) == 0, states
        assert states["succeeded"] >= len(held), states
        assert states["succeeded"] + states.get("ready", 0) == 20, states
