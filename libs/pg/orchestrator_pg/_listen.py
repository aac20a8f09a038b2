"""Dedicated LISTEN connections that come back by themselves.

:func:`listen_forever` is the one reconnecting loop: it opens a connection of its own (not a
pooled one: a pool would hand it to others and lose the subscription), runs the named
``LISTEN`` query, hands the connection to ``serve`` until the connection fails, then
reconnects with capped, jittered backoff. :class:`ReadyListener` (``orch_jobs_ready``, the
leases dispatcher's wake-up) and :class:`~orchestrator_pg.EventHorizon` (``orch_events``)
are built on it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from orchestrator_pg._queries import query

RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 5.0

ListenConnection = psycopg.AsyncConnection[Any]
WakeFn = Callable[[frozenset[str] | None], None]
"""Called with the job types that became ready, or None for "anything may be ready"."""

_log = logging.getLogger("orchestrator_pg.listen")
# Reconnect jitter from its own generator: the global one belongs to the application.
_JITTER = random.Random()


async def listen_forever(
    conninfo: str,
    listen_query: str,
    serve: Callable[[ListenConnection], Awaitable[None]],
    *,
    label: str,
) -> None:
    """Runs ``serve`` on a LISTENing connection until cancelled, reconnecting after errors.

    Args:
        conninfo: PostgreSQL URL.
        listen_query: name of the ``LISTEN`` query (``job_ready_listen``, ``event_listen``).
        serve: uses the connection (rows are dicts) until it fails; returning also
            reconnects.
        label: what listens, for the logs and the connection's ``application_name``
            (``orchestrator <label>``).
    """
    delay = RECONNECT_MIN_S
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(
                conninfo,
                autocommit=True,
                row_factory=dict_row,
                application_name=f"orchestrator {label}",  # findable in pg_stat_activity
            )
        except psycopg.OperationalError as exc:
            _log.warning("%s: connection failed (%s); retrying in %.1f s", label, exc, delay)
        else:
            try:
                async with conn:
                    await conn.execute(query(listen_query))
                    delay = RECONNECT_MIN_S
                    await serve(conn)
            except psycopg.OperationalError as exc:
                _log.warning("%s: connection lost (%s); reconnecting", label, exc)
        await asyncio.sleep(delay * _JITTER.uniform(0.5, 1.0))
        delay = min(delay * 2, RECONNECT_MAX_S)


class ReadyListener:
    """Listens on ``orch_jobs_ready`` and calls every subscriber with the job types.

    The outbox triggers NOTIFY ``orch_jobs_ready`` with the comma-separated job types that
    became claimable in a commit, so idle sessions wake within milliseconds of new work
    instead of polling. After a reconnect every subscriber is woken with None: notifications
    sent while the connection was away are lost.

    Args:
        conninfo: PostgreSQL URL (the listener keeps one dedicated connection).
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._subscribers: list[WakeFn] = []
        self.connected = asyncio.Event()

    def subscribe(self, fn: WakeFn) -> Callable[[], None]:
        """Adds a subscriber; returns the function that removes it."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def _publish(self, types: frozenset[str] | None) -> None:
        for fn in list(self._subscribers):
            fn(types)

    async def run(self) -> None:
        """Listens until cancelled."""
        await listen_forever(
            self._conninfo, "job_ready_listen", self._serve, label="jobs-ready listener"
        )

    async def _serve(self, conn: ListenConnection) -> None:
        self.connected.set()
        try:
            self._publish(None)  # anything committed while we were not listening
            async for note in conn.notifies():
                types = frozenset(t for t in note.payload.split(",") if t)
                self._publish(types or None)
        finally:
            self.connected.clear()
