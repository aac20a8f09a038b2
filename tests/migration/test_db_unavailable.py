"""A lost database connection is Unavailable (retryable), and the pool recovers by itself;
errors that are not about the connection keep their own type for the ledger to map."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from orchestrator_core import Aborted, Unavailable
from orchestrator_pg import Database, TxContext

CTX = TxContext(tenant="")


async def _in_transaction(db: Database, *statements: str) -> None:
    async with db.transaction(CTX) as conn:
        for sql in statements:
            await conn.execute(sql)


def _kill_backends(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            # client backends only: an autovacuum worker is a superuser process
            " AND backend_type = 'client backend'"
        ).fetchall()
    return len(rows)


async def test_a_killed_connection_is_unavailable_then_the_pool_recovers(migrated_db: str) -> None:
    async with Database(migrated_db, min_size=1, max_size=1) as db:
        await _in_transaction(db, "SELECT 1")
        assert _kill_backends(migrated_db) >= 1
        with pytest.raises(Unavailable) as lost:
            await _in_transaction(db, "SELECT 1")
        assert lost.value.grpc_status == "UNAVAILABLE"
        assert isinstance(lost.value.__cause__, psycopg.OperationalError)
        # the pool replaced the broken connection: the next call works
        async with db.connection() as conn:
            cur = await conn.execute("SELECT 42 AS answer")
            assert (await cur.fetchone())["answer"] == 42


async def test_errors_that_are_not_the_connection_keep_their_type(migrated_db: str) -> None:
    async with Database(migrated_db, min_size=1, max_size=1) as db:
        # QueryCanceled is an OperationalError too (SQLSTATE 57014), but not a lost connection
        with pytest.raises(psycopg.errors.QueryCanceled):
            await _in_transaction(db, "SET LOCAL statement_timeout = 1", "SELECT pg_sleep(1)")
        with pytest.raises(psycopg.errors.UndefinedTable):
            await _in_transaction(db, "SELECT * FROM no_such_table")


async def test_a_deadlock_is_aborted_and_retryable(migrated_db: str) -> None:
    """PostgreSQL breaks a deadlock by rolling one transaction back: that one is Aborted
    (ABORTED: send it again), the other commits."""
    with psycopg.connect(migrated_db, autocommit=True) as admin:
        admin.execute("CREATE TABLE deadlock_probe (id int PRIMARY KEY, n int NOT NULL)")
        admin.execute("INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)")
    async with Database(migrated_db, min_size=2, max_size=2) as db:
        first_locked, second_locked = asyncio.Event(), asyncio.Event()

        async def crossing(mine: int, other: int, locked: asyncio.Event, wait: asyncio.Event):
            async with db.transaction(CTX) as conn:
                await conn.execute("UPDATE deadlock_probe SET n = n + 1 WHERE id = %s", (mine,))
                locked.set()
                await wait.wait()
                await conn.execute("UPDATE deadlock_probe SET n = n + 1 WHERE id = %s", (other,))

        results = await asyncio.gather(
            crossing(1, 2, first_locked, second_locked),
            crossing(2, 1, second_locked, first_locked),
            return_exceptions=True,
        )
    aborted = [r for r in results if isinstance(r, Aborted)]
    assert len(aborted) == 1, results
    assert [r for r in results if r is not aborted[0]] == [None]
    assert aborted[0].grpc_status == "ABORTED"
    assert "deadlock" in str(aborted[0])
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT sum(n) FROM deadlock_probe").fetchone() == (2,)
