"""Weighted fair share end to end (issue 21 item 3): two tenants with weights 1 and 3 and
equal backlogs, one shared fleet through the leases service's Work stream: over the first
10,000 leases (both backlogs stay deep) the weight-3 tenant gets three for every one of the
other, within +-10 %. Leases are counted from the event history, in seq order, so the
machine's speed does not matter."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest

from orchestrator_grpckit import mint_dev_token
from stella_orchestrator.worker import Job, Worker
from tests.conftest import DEV_SECRET
from tests.e2e.test_fairness import _bulk_ready_jobs

pytestmark = [pytest.mark.integration, pytest.mark.slow]
COUNTED = 10_000
BACKLOG = 8_000  # each: the heavy tenant's 7,500 leases leave it ready jobs to spare


async def test_weights_one_and_three_get_leases_one_to_three(
    leases_target: str, database_url: str
) -> None:
    suffix = uuid.uuid4().hex[:8]
    light, heavy = f"share-a-{suffix}", f"share-b-{suffix}"
    job_type = f"share.{suffix}"
    with psycopg.connect(database_url, autocommit=True) as db:
        for tenant, weight in ((light, 1), (heavy, 3)):
            db.execute(
                "INSERT INTO orchestrator.tenants (id, weight) VALUES (%s, %s)", (tenant, weight)
            )
            _bulk_ready_jobs(db, tenant, job_type, BACKLOG)

    async def handle(job: Job) -> None:
        await asyncio.sleep(0.005)

    worker = Worker(
        leases_target,
        token=mint_dev_token(DEV_SECRET, "fleet", [light, heavy], ["orch:work"]),
        concurrency=50,
        drain_timeout_s=5,
    )
    worker.add_handler(job_type, handle)
    running = asyncio.create_task(worker.run())
    try:
        with psycopg.connect(database_url, autocommit=True) as db:
            deadline = time.monotonic() + 600
            while True:
                (leased,) = db.execute(
                    "SELECT count(*) FROM orchestrator.events"
                    " WHERE job_type = %s AND type = 'job.leased'",
                    (job_type,),
                ).fetchone()
                if leased >= COUNTED:
                    break
                assert time.monotonic() < deadline, f"only {leased} leases in 600 s"
                await asyncio.sleep(0.2)
    finally:
        worker.stop()
        await asyncio.wait_for(running, 60)
    with psycopg.connect(database_url, autocommit=True) as db:
        rows = db.execute(
            "SELECT tenant, count(*) FROM (SELECT tenant FROM orchestrator.events"
            "  WHERE job_type = %s AND type = 'job.leased' ORDER BY seq LIMIT %s) first"
            " GROUP BY tenant",
            (job_type, COUNTED),
        ).fetchall()
    counts = dict(rows)
    assert abs(counts[heavy] / COUNTED - 0.75) <= 0.075, counts
