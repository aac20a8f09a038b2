"""The locks a settle (after jobs change state, orchestrator_pg._tx.settle) takes cannot form
a cycle with another settle's.

Under ``make chaos`` two leases replicas completing jobs of one DAG run deadlocked: one had
recorded artifacts (their foreign key to the run holds a KEY SHARE lock on the run row) and
then waited for a child job the other had just released, while the other waited in
``run_lock_many`` for the run row with FOR UPDATE, which conflicts with KEY SHARE. PostgreSQL
aborted a completion flush, its Work stream failed, and the stream's jobs ran again.
``run_lock_many`` now takes FOR NO KEY UPDATE, which serialises settles without conflicting
with foreign-key checks.

And the children a settle releases (or cancels) are locked in id order, so two settles with
overlapping children never lock them in opposite orders (a join meets them in whatever order
its plan gives — heap order for a sequential scan). Here one transaction holds the child with
the highest id; the releasing statement must then already hold every lower child while it
waits. The children are laid out in the heap against id order and index scans are off, so the
join meets them in descending order (the old statements waited at the first, holding none).
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest

from orchestrator_pg._queries import query
from stella.orchestrator.v1 import scheduler_pb2
from tests.integration._dag import spec

pytestmark = pytest.mark.integration
PAIRS = 40
WAIT_S = 60.0


def _blocked_by(db: psycopg.Connection, pid: int, blocker: int) -> bool:
    row = db.execute("SELECT %s = ANY(pg_blocking_pids(%s))", (blocker, pid)).fetchone()
    return bool(row and row[0])


async def test_locking_runs_waits_for_no_foreign_key_check(
    scheduler, db: psycopg.Connection, database_url: str
) -> None:
    reply = await scheduler.CreateRun(
        scheduler_pb2.CreateRunRequest(name="fk", jobs=[spec("only", "lockorder.fk")])
    )
    with (
        psycopg.connect(database_url) as inserter,
        psycopg.connect(database_url) as settler,
    ):
        # What the foreign-key check of an artifact (or job) insert takes on its run.
        inserter.execute(
            "SELECT 1 FROM orchestrator.runs WHERE id = %s FOR KEY SHARE", (reply.run.id,)
        )
        settler.execute("SET lock_timeout = '5s'")
        try:
            rows = settler.execute(query("run_lock_many"), {"run_ids": [reply.run.id]})
            assert [str(r[0]) for r in rows.fetchall()] == [reply.run.id]
        finally:
            settler.rollback()
            inserter.rollback()


@pytest.mark.parametrize("name", ["job_release_children", "job_cancel_descendants"])
async def test_settling_locks_children_in_id_order(
    name: str, scheduler, db: psycopg.Connection, database_url: str
) -> None:
    jobs = [spec(f"p{i}", "lockorder.parent") for i in range(PAIRS)]
    jobs += [spec(f"c{i}", "lockorder.child", [f"p{i}"]) for i in range(PAIRS)]
    reply = await scheduler.CreateRun(scheduler_pb2.CreateRunRequest(name=name, jobs=jobs))
    rows = db.execute(
        "SELECT key, id FROM orchestrator.jobs WHERE run_id = %s", (reply.run.id,)
    ).fetchall()
    parents = [job_id for key, job_id in rows if key.startswith("p")]
    children = sorted(job_id for key, job_id in rows if key.startswith("c"))
    # Rewritten highest id first, the children lie in the heap in descending id order: a
    # sequential scan (what a join over a large ledger uses) meets them that way.
    for child in reversed(children):
        db.execute("UPDATE orchestrator.jobs SET updated_at = updated_at WHERE id = %s", (child,))

    with (
        psycopg.connect(database_url) as holder,
        psycopg.connect(database_url) as settler,
    ):
        holder.execute("SELECT 1 FROM orchestrator.jobs WHERE id = %s FOR UPDATE", (children[-1],))
        settler.execute("SET enable_indexscan = off")
        settler.execute("SET enable_bitmapscan = off")
        failure: list[BaseException] = []

        def settle() -> None:
            try:
                settler.execute(query(name), {"ids": parents, "now": datetime.now(UTC)})
            except BaseException as exc:  # reported by the test thread
                failure.append(exc)

        thread = threading.Thread(target=settle, name="settle")
        thread.start()
        try:
            deadline = time.monotonic() + WAIT_S
            delay = 0.01
            while not _blocked_by(db, settler.info.backend_pid, holder.info.backend_pid):
                assert thread.is_alive(), failure or "the settle finished without waiting"
                assert time.monotonic() < deadline, "the settle never waited for the held child"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
            free = db.execute(
                "SELECT count(*) FROM (SELECT id FROM orchestrator.jobs WHERE id = ANY(%s)"
                " FOR UPDATE SKIP LOCKED) s",
                (children[:-1],),
            ).fetchone()
            assert free is not None
            assert free[0] == 0, f"{free[0]} lower children not locked while it waits"
        finally:
            holder.rollback()
            thread.join(WAIT_S)
            settler.rollback()
        assert not failure, failure
