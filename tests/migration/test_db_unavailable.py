"""A lost database connection is Unavailable (retryable), and the pool recovers by itself;
errors that are not about the connection keep their own type for the ledger to map."""

from __future__ import annotations

import psycopg
import pytest

from orchestrator_core import Unavailable
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
