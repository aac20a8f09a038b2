"""ReadyListener: one LISTEN connection per process on ``orch_jobs_ready``.

The outbox triggers NOTIFY ``orch_jobs_ready`` with the comma-separated job types that
became claimable in a commit. The listener forwards them to its subscribers (the dispatcher
and waiting unary claims), so idle sessions wake within milliseconds of new work instead of
polling. When the connection drops it reconnects with capped, jittered backoff and then wakes
everyone (notifications sent while it was away are lost).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import psycopg

from orchestrator_pg import query

CHANNEL = "orch_jobs_ready"
RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 5.0

WakeFn = Callable[[frozenset[str] | None], None]
"""Called with the job types that became ready, or None for "anything may be ready"."""

_log = logging.getLogger("orchestrator_leases.notify")
# Reconnect jitter from its own generator: the global one belongs to the application.
_JITTER = random.Random()


class ReadyListener:
    """Listens on ``orch_jobs_ready`` and calls every subscriber with the job types.

    Args:
        conninfo: PostgreSQL URL (a dedicated connection, not a pooled one).
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
        """Listens until cancelled, reconnecting after errors."""
        delay = RECONNECT_MIN_S
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            except psycopg.OperationalError as exc:
                _log.warning("LISTEN connection failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay * _JITTER.uniform(0.5, 1.0))
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            try:
                async with conn:
                    await conn.execute(query("jobs_ready_listen"))
                    self.connected.set()
                    delay = RECONNECT_MIN_S
                    self._publish(None)  # anything committed while we were not listening
                    async for note in conn.notifies():
                        types = frozenset(t for t in note.payload.split(",") if t)
                        self._publish(types or None)
            except psycopg.OperationalError as exc:
                _log.warning("LISTEN connection lost (%s); reconnecting", exc)
            finally:
                self.connected.clear()
            await asyncio.sleep(delay * _JITTER.uniform(0.5, 1.0))
            delay = min(delay * 2, RECONNECT_MAX_S)
