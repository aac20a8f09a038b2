"""Settling a completion batch costs the same whatever the table's statistics say.

After every batch of completions (and of failures) the leases service runs
``job_release_children`` (and ``job_cancel_descendants``): most completed jobs have no
children, so each should cost a probe of ``dag_edges`` and nothing more. On a table whose
statistics were taken before a backlog arrived — a big history analysed while nothing was
queued, then a backfill below autoanalyze's 10 % — the planner believed the partial index of
queued jobs empty and scanned all of it for every batch, removing the ready jobs one by one
(measured: 17-26 ms a call with 100,000 ready jobs). Buffer counts depend on the data and the
plan, not on the machine's speed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from bench.claim_cost import SEED_JOBS
from orchestrator_pg import query
from tests.conftest import migrated_database

pytestmark = pytest.mark.integration

TENANT = "settle-t"


@pytest.fixture
def url(admin_url: str) -> Iterator[str]:
    with migrated_database(admin_url, "orch_settleplan") as url:
        yield url


def seed_stale(url: str, *, finished: int, backlog: int) -> list[str]:
    """``finished`` succeeded jobs, analysed while nothing is queued, then ``backlog`` ready
    jobs the statistics do not know of; returns the ids of some finished jobs."""
    with psycopg.connect(url, autocommit=True) as conn:
        # autovacuum must not refresh the statistics while the test reads plans
        conn.execute("ALTER TABLE orchestrator.jobs SET (autovacuum_enabled = false)")
        conn.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (TENANT,))
        seed = {"tenants": [TENANT], "job_type": "settle.done", "state": "succeeded"}
        # written in bulk like bench/backlog.py's history: no creation events
        conn.execute("ALTER TABLE orchestrator.jobs DISABLE TRIGGER USER")
        try:
            conn.execute(SEED_JOBS, {**seed, "n": finished})
            conn.execute("VACUUM ANALYZE orchestrator.jobs")
            conn.execute(
                SEED_JOBS, {**seed, "job_type": "settle.queued", "state": "ready", "n": backlog}
            )
        finally:
            conn.execute("ALTER TABLE orchestrator.jobs ENABLE TRIGGER USER")
        rows = conn.execute(
            "SELECT id::text FROM orchestrator.jobs WHERE job_type = 'settle.done' LIMIT 50"
        ).fetchall()
    return [r[0] for r in rows]


def executed_plan(url: str, name: str, ids: list[str]) -> dict[str, Any]:
    """The executed plan of one settling statement over ``ids`` (rolled back)."""
    with psycopg.connect(url) as conn:
        (plan,) = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query(name),
            {"ids": ids, "now": datetime.now(UTC)},
        ).fetchone()
        conn.rollback()
    return plan[0] if isinstance(plan, list) else json.loads(plan)[0]


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


@pytest.mark.parametrize("name", ["job_release_children", "job_cancel_descendants"])
def test_settling_jobs_without_children_reads_no_queued_jobs(url: str, name: str) -> None:
    rng = random.Random(name)
    backlog = rng.randrange(15_000, 30_000)
    ids = seed_stale(url, finished=rng.randrange(1_000, 4_000), backlog=backlog)
    doc = executed_plan(url, name, ids)

    scans = [
        n
        for n in nodes(doc["Plan"])
        if n.get("Relation Name") == "jobs" and n["Node Type"] != "ModifyTable"
    ]
    # Children are looked up by primary key; no other index of jobs (the partial index of
    # queued jobs above all) and no sequential scan.
    assert all(n.get("Index Name") == "jobs_pkey" for n in scans), [
        (n["Node Type"], n.get("Index Name")) for n in scans
    ]
    assert not any(n.get("Rows Removed by Filter", 0) for n in scans)
    # A handful of index pages, not the ~1 buffer per 30 queued jobs a walk over them costs.
    touched = doc["Plan"].get("Shared Hit Blocks", 0) + doc["Plan"].get("Shared Read Blocks", 0)
    assert touched < backlog / 100, (touched, backlog)
