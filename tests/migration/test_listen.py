"""The dedicated LISTEN connections come back by themselves: the jobs-ready listener and the
event horizon, each with its backend killed under it (what a PostgreSQL restart or a network
cut does), reconnect, re-subscribe, and go on delivering."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg

from orchestrator_pg import EventHorizon, ReadyListener

WAIT_S = 30.0


def _kill(url: str, application_name: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


async def test_the_ready_listener_reconnects_and_resubscribes(migrated_db: str) -> None:
    listener = ReadyListener(migrated_db)
    seen: asyncio.Queue[frozenset[str] | None] = asyncio.Queue()
    listener.subscribe(seen.put_nowait)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.connected.wait(), WAIT_S)
        assert await asyncio.wait_for(seen.get(), WAIT_S) is None  # woken at connect
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            conn.execute("SELECT pg_notify('orch_jobs_ready', 'a.fetch,b.parse')")
        assert await asyncio.wait_for(seen.get(), WAIT_S) == {"a.fetch", "b.parse"}

        assert _kill(migrated_db, "orchestrator jobs-ready listener") == 1
        # back: everyone is woken (notifications sent meanwhile are lost), then NOTIFYs flow
        assert await asyncio.wait_for(seen.get(), WAIT_S) is None
        await asyncio.wait_for(listener.connected.wait(), WAIT_S)
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            conn.execute("SELECT pg_notify('orch_jobs_ready', 'c.sbom')")
        assert await asyncio.wait_for(seen.get(), WAIT_S) == {"c.sbom"}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_event_horizon_reconnects_and_moves_on(migrated_db: str) -> None:
    horizon = EventHorizon(migrated_db)
    task = asyncio.create_task(horizon.run())
    try:
        await asyncio.wait_for(horizon.ready.wait(), WAIT_S)
        before = horizon.seq
        assert _kill(migrated_db, "orchestrator event horizon") == 1
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            conn.execute("SELECT nextval('orchestrator.events_seq')")
            (last,) = conn.execute("SELECT last_value FROM orchestrator.events_seq").fetchone()
        assert last > before
        # the new connection computes the horizon again and reaches the sequence's head
        seq = await asyncio.wait_for(horizon.wait_beyond(before, WAIT_S), WAIT_S)
        assert seq >= last
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
