"""The Go producer example against the real scheduler (real PostgreSQL, in-process
services): it creates a run with a five-job DAG (fetch -> parse -> index-a, index-b ->
publish), a Go worker completes it, and the ledger shows the order held."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

import psycopg
import pytest

from tests.crosslang.conftest import BUILD_TIMEOUT_S, ROOT, _tool, build_env

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
PRODUCER_TIMEOUT_S = 300  # generous: a loaded CI machine
EDGES = [
    ("fetch", "parse"),
    ("parse", "index-a"),
    ("parse", "index-b"),
    ("index-a", "publish"),
    ("index-b", "publish"),
]


async def test_go_producer_runs_a_dag_that_a_go_worker_completes_in_order(
    go_producer_bin, scheduler_target: str, make_token, launch, database_url: str
) -> None:
    prefix = f"gp{uuid.uuid4().hex[:8]}"
    types = [f"{prefix}.{step}" for step in ("fetch", "parse", "index", "publish")]
    launch("go", f"gp-worker-{prefix}", types)
    key = f"{prefix}-run"
    cmd = [str(go_producer_bin), "-target", scheduler_target, "-token", make_token("acme")]
    cmd += ["-prefix", prefix, "-idempotency-key", key, "-timeout", f"{PRODUCER_TIMEOUT_S}s"]
    # The services run in this test's event loop: run the producer off the loop.
    done = await asyncio.to_thread(
        subprocess.run,
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PRODUCER_TIMEOUT_S + 60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["state"] == "succeeded", report
    assert report["existing_on_retry"] is True  # the idempotency key returned the same run
    order = report["succeeded_order"]
    assert sorted(order) == sorted(["fetch", "parse", "index-a", "index-b", "publish"]), order
    for parent, child in EDGES:
        assert order.index(parent) < order.index(child), order

    with psycopg.connect(database_url, autocommit=True) as db:
        (runs,) = db.execute(
            "SELECT count(*) FROM orchestrator.runs WHERE idempotency_key = %s", (key,)
        ).fetchone()
        assert runs == 1
        rows = db.execute(
            "SELECT key, id::text, state, result->>'sdk' FROM orchestrator.jobs WHERE run_id = %s",
            (report["run_id"],),
        ).fetchall()
        assert {k: (s, sdk) for k, _, s, sdk in rows} == {
            k: ("succeeded", "go") for k in report["jobs"]
        }
        ids = {k: job_id for k, job_id, _, _ in rows}
        assert ids == report["jobs"]

        def seq(job_key: str, event: str) -> int:
            (value,) = db.execute(
                "SELECT min(seq) FROM orchestrator.events WHERE job_id = %s AND type = %s",
                (ids[job_key], event),
            ).fetchone()
            assert value is not None, (job_key, event)
            return int(value)

        # In the ledger: no child was leased before each of its parents had succeeded.
        for parent, child in EDGES:
            assert seq(parent, "job.succeeded") < seq(child, "job.leased"), (parent, child)


async def test_go_producer_families_against_the_real_scheduler_and_leases(
    scheduler_target: str, leases_target: str, make_token
) -> None:
    """The Go tests named TestLive* (clients/go/producer/live_test.go) against the in-process
    services: sources, quotas, job submission, a dead letter replayed through a Go worker,
    schedules, backfills and the google.rpc details of real refusals."""
    scopes = ("orch:read", "orch:operate", "orch:quota", "orch:backfill")
    env = {
        **build_env(),
        "STELLA_LIVE_SCHEDULER": scheduler_target,
        "STELLA_LIVE_LEASES": leases_target,
        "STELLA_LIVE_TOKEN": make_token("acme", scopes, subject="go-producer-live"),
        "STELLA_LIVE_READER_TOKEN": make_token("acme", ("orch:read",)),
        "STELLA_LIVE_WORKER_TOKEN": make_token("acme", ("orch:work",), subject="go-live-worker"),
    }
    cmd = [_tool("go"), "test", "-count=1", "-run", "^TestLive", "-v", "./producer/"]
    done = await asyncio.to_thread(
        subprocess.run,
        cmd,
        cwd=ROOT / "clients" / "go",
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    # Every live test ran (none skipped for a missing variable).
    assert "--- SKIP" not in done.stdout, done.stdout
    assert done.stdout.count("--- PASS: TestLive") >= 4, done.stdout
