"""Leadership of the leader loops, against a real PostgreSQL (a database per test, so the real
keys are used): one leader per loop, takeover when a leader's connection dies, and loops that
never block each other (the lease watchdog once shared the partition maintainer's key and
starved it for as long as any leases service ran)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import psycopg
from prometheus_client import REGISTRY

from orchestrator_core import FrozenClock
from orchestrator_pg import (
    Database,
    EventPartitionMaintainer,
    LeaderLoop,
    Leadership,
    LeaseLedger,
)
from orchestrator_pg._leadership import _leading
from orchestrator_pg._maintenance import PARTITION_DAYS_AHEAD


def holders(url: str, loop: LeaderLoop) -> list[int]:
    """Backend pids that hold the loop's lock in this database (pg_locks is cluster-wide:
    stacks of other tests hold the same keys in theirs), read by another connection."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = %s",
            (loop.key,),
        ).fetchall()
    return [row[0] for row in rows]


def leading_here(loop: LeaderLoop) -> int:
    """How many Leadership objects of this process lead the loop — other tests' services in
    this process may lead it in their own databases — checked against the exported gauge."""
    count = _leading[loop.label]
    exported = REGISTRY.get_sample_value("orch_leader", {"loop": loop.label}) or 0
    assert exported == min(count, 1)
    return count


def test_every_loop_has_its_own_bigint_key() -> None:
    keys = [loop.key for loop in LeaderLoop]
    assert len(set(keys)) == len(keys) == len(list(LeaderLoop))
    assert all(0 < key < 2**63 for key in keys)
    assert len({loop.label for loop in LeaderLoop}) == len(keys)
    assert LeaderLoop.LEASE_WATCHDOG.key != LeaderLoop.EVENT_PARTITIONS.key


async def test_one_leader_among_replicas_and_a_takeover_when_it_dies(migrated_db: str) -> None:
    loop = random.choice([LeaderLoop.LEASE_WATCHDOG, LeaderLoop.SCHEDULE_FIRING])
    replicas = [Leadership(migrated_db, loop) for _ in range(random.randint(2, 5))]
    others = leading_here(loop)
    try:
        won = await asyncio.gather(*(r.ensure() for r in replicas))
        assert won.count(True) == 1
        leader = replicas[won.index(True)]
        assert leader.is_leader
        assert leading_here(loop) == others + 1
        pid = leader.connection.info.backend_pid
        assert holders(migrated_db, loop) == [pid]
        # the leader keeps leading on every re-check; the others keep standing by
        for _ in range(3):
            again = await asyncio.gather(*(r.ensure() for r in replicas))
            assert again == won

        # the leader's process dies (its backend goes): the lock is free, it knows it lost
        with psycopg.connect(migrated_db, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert not await leader.ensure()
        assert not leader.is_leader
        assert leading_here(loop) == others
        standing = [r for r in replicas if r is not leader]
        after = await asyncio.gather(*(r.ensure() for r in standing))
        assert after.count(True) == 1
        successor = standing[after.index(True)]
        assert holders(migrated_db, loop) == [successor.connection.info.backend_pid]
        assert not await leader.ensure()  # back, but the successor holds the lock

        # a clean release hands over at the next attempt
        await successor.release()
        assert holders(migrated_db, loop) == []
        assert await leader.ensure()
    finally:
        for replica in replicas:
            await replica.release()
    assert holders(migrated_db, loop) == []


async def test_a_database_outage_answers_false_and_never_raises() -> None:
    unreachable = "postgresql://nobody:nothing@127.0.0.1:1/none?connect_timeout=2"
    leadership = Leadership(unreachable, LeaderLoop.AUDIT_CHAIN)
    assert not await leadership.ensure()
    assert not leadership.is_leader


async def test_every_loop_leads_at_once(migrated_db: str) -> None:
    loops = [loop for loop in LeaderLoop if loop is not LeaderLoop.MIGRATIONS]
    replicas = [Leadership(migrated_db, loop) for loop in loops]
    try:
        assert await asyncio.gather(*(r.ensure() for r in replicas)) == [True] * len(loops)
        for loop in loops:
            assert len(holders(migrated_db, loop)) == 1
    finally:
        for replica in replicas:
            await replica.release()


async def test_partitions_are_maintained_while_a_watchdog_leads(migrated_db: str) -> None:
    from orchestrator_leases._watchdog import Watchdog

    far = datetime(2033, 5, 20, 12, tzinfo=UTC)
    async with Database(migrated_db) as database:
        watchdog = Watchdog(migrated_db, LeaseLedger(database), interval_s=0.05)
        task = asyncio.create_task(watchdog.run())
        try:
            async with asyncio.timeout(60):
                while not (watchdog.is_leader and watchdog.passes):  # noqa: ASYNC110 - polls a flag
                    await asyncio.sleep(0.05)
            assert len(holders(migrated_db, LeaderLoop.LEASE_WATCHDOG)) == 1
            maintainer = EventPartitionMaintainer(migrated_db, clock=FrozenClock(far))
            created, _ = await maintainer.run_once()
            assert created == PARTITION_DAYS_AHEAD + 2
            assert watchdog.is_leader
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert holders(migrated_db, LeaderLoop.LEASE_WATCHDOG) == []  # released on the way out
