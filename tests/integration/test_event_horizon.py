"""The event horizon never passes a seq whose writer is still open.

The writer here is the newest transaction of the cluster and its first write is the one that
emits the event: a snapshot's in-progress list leaves such a transaction out (its xid is above
the newest finished one), which is how live streams lost events during burn-downs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from orchestrator_pg import AuditLedger, Database, EventHorizon
from tests.conftest import migrated_database

pytestmark = pytest.mark.integration


@pytest.fixture
def horizon_db(admin_url: str) -> Iterator[str]:
    with migrated_database(admin_url, "horizon", ("acme",)) as url:
        yield url


async def _open_writer(url: str) -> tuple[psycopg.AsyncConnection, int]:
    """A transaction that has written one event and stays open: (connection, its seq)."""
    writer = await psycopg.AsyncConnection.connect(url)
    await writer.execute(
        "INSERT INTO orchestrator.sources (id, tenant, name, source_type, host, created_at,"
        " updated_at) VALUES (%s, 'acme', %s, 'http', 'feed.example', now(), now())",
        (uuid.uuid4(), f"s-{uuid.uuid4().hex[:6]}"),
    )
    cur = await writer.execute("SELECT max(seq) FROM orchestrator.events")
    row = await cur.fetchone()
    assert row is not None
    return writer, int(row[0])


@pytest.mark.parametrize("writers", [1, 3])
async def test_horizon_waits_for_every_open_writer(horizon_db: str, writers: int) -> None:
    horizon = EventHorizon(horizon_db)
    reader = await psycopg.AsyncConnection.connect(
        horizon_db, autocommit=True, row_factory=dict_row
    )
    opened = [await _open_writer(horizon_db) for _ in range(writers)]
    try:
        top = max(seq for _, seq in opened)
        computing = asyncio.create_task(horizon._compute(reader))
        # Commit all but the first writer: the horizon still may not reach past its seq.
        for writer, _ in opened[1:]:
            await writer.commit()
        done, _ = await asyncio.wait({computing}, timeout=1.0)
        assert not done, "the horizon passed a seq whose writer is still open"
        await opened[0][0].commit()
        async with asyncio.timeout(30):
            assert await computing >= top
    finally:
        for writer, _ in opened:
            await writer.close()
        await reader.close()


async def test_horizon_is_immediate_without_writers(horizon_db: str) -> None:
    writer, seq = await _open_writer(horizon_db)
    await writer.commit()
    await writer.close()
    async with await psycopg.AsyncConnection.connect(
        horizon_db, autocommit=True, row_factory=dict_row
    ) as reader:
        async with asyncio.timeout(30):
            assert await EventHorizon(horizon_db)._compute(reader) == seq


async def test_the_audit_chain_settles_by_the_same_rule(horizon_db: str) -> None:
    """The chainer links only settled events: its settle waits for the same writers."""
    db = Database(horizon_db, min_size=1, max_size=2)
    await db.open()
    writer, seq = await _open_writer(horizon_db)
    try:
        settling = asyncio.create_task(AuditLedger(db).settled_seq())
        done, _ = await asyncio.wait({settling}, timeout=1.0)
        assert not done, "the audit chain settled past a seq whose writer is still open"
        await writer.commit()
        async with asyncio.timeout(30):
            assert await settling >= seq
    finally:
        await writer.close()
        await db.close()
