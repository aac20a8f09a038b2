"""Event history readers for live streams: a safe horizon and pages up to it.

Why a horizon: ``events.seq`` comes from a sequence, and transactions commit in any order, so
seq 11 can be visible while seq 10 is still uncommitted. A stream that resumed after 11 would
lose 10 for good. :class:`EventHorizon` publishes a seq ``h`` such that every transaction that
holds a seq ``<= h`` has finished (committed or rolled back): events ``<= h`` never change, so
a reader that pages ``(after, h]`` misses nothing and repeats nothing.

How: read the sequence's last value ``c``, then list the transactions that hold a write lock
on ``orchestrator.events``; a writer takes that lock before its insert draws a seq (and the
sequence has no per-session cache), so every writer holding a seq ``<= c`` is in the list or
already finished, and once the listed transactions have ended, ``c`` is safe. (A snapshot's
in-progress list is not enough: it leaves out running transactions whose xid is above the
newest finished one, which lost live events under load.) One LISTEN
connection per process wakes the tracker on ``orch_events``; a poll every
:data:`POLL_INTERVAL_S` covers lost notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from orchestrator_pg._db import Database, Row
from orchestrator_pg._listen import ListenConnection, listen_forever
from orchestrator_pg._queries import query

POLL_INTERVAL_S = 1.0
# The settle check starts quick (writers of the ledger usually commit in milliseconds) and
# backs off, so a long writer costs a few queries a second, not hundreds.
SETTLE_POLL_S = 0.005
SETTLE_POLL_MAX_S = 0.25
# A writer of events still open after this long is assumed stuck; the horizon moves on rather
# than stalling every stream forever (and logs it: a stream may then miss that writer's
# events). Long enough for the slowest legitimate writer — a 10,000-job CreateRun on a loaded
# machine takes seconds — because moving on early loses events for every live reader.
SETTLE_TIMEOUT_S = 60.0
SETTLE_WARN_S = 10.0

_log = logging.getLogger("orchestrator_pg.eventstream")


async def _one(conn: Any, name: str, params: dict[str, Any] | None = None) -> Row | None:
    """One statement in a transaction of its own (the pool's connections are not autocommit:
    a transaction left open would hold back the very writers being waited for)."""
    cur = await conn.execute(query(name), params)
    row: Row | None = await cur.fetchone()
    if not conn.autocommit:
        await conn.rollback()
    return row


async def event_seq_settled(conn: Any, *, give_up_s: float | None) -> int:
    """The highest event seq handed out, once every transaction that was writing events when
    it was read has ended (the module note says why that makes it final).

    Args:
        conn: A connection of this database (autocommit or not).
        give_up_s: Return anyway after this long with a writer still open (logged: a live
            reader may then miss that writer's events); ``None`` waits as long as it takes,
            warning every :data:`SETTLE_WARN_S` (the audit chain: correctness first).
    """
    candidate = int(((await _one(conn, "event_horizon_candidate")) or {"seq": 0})["seq"])
    writers = list(((await _one(conn, "event_horizon_writers")) or {"writers": []})["writers"])
    loop = asyncio.get_running_loop()
    started = warned = loop.time()
    pause = SETTLE_POLL_S
    while writers:
        row = await _one(conn, "event_horizon_settled", {"writers": writers})
        if row is not None and row["settled"]:
            break
        now = loop.time()
        if give_up_s is not None and now - started > give_up_s:
            _log.warning(
                "a transaction writing events stayed open %.0f s while settling seq %d; "
                "moving on (a live reader may miss its events)",
                give_up_s,
                candidate,
            )
            break
        if now - warned > SETTLE_WARN_S:
            _log.warning("a transaction writing events has been open %.0f s", now - started)
            warned = now
        await asyncio.sleep(pause)
        pause = min(pause * 2, SETTLE_POLL_MAX_S)
    return candidate


class EventHorizon:
    """Tracks the highest event seq that is final (see the module note).

    Args:
        conninfo: PostgreSQL URL; the tracker keeps one dedicated connection.
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._seq = -1
        self._changed = asyncio.Condition()
        self.ready = asyncio.Event()

    @property
    def seq(self) -> int:
        """The current horizon (``-1`` before the first computation)."""
        return self._seq

    async def wait_beyond(self, seq: int, timeout_s: float) -> int:
        """Wait until the horizon passes ``seq`` or ``timeout_s`` elapses.

        Returns:
            The horizon at return.
        """
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._changed.wait_for(lambda: self._seq > seq)
            return self._seq

    async def _publish(self, seq: int) -> None:
        if seq > self._seq:
            async with self._changed:
                self._seq = seq
                self._changed.notify_all()
        self.ready.set()

    async def _compute(self, conn: ListenConnection) -> int:
        return await event_seq_settled(conn, give_up_s=SETTLE_TIMEOUT_S)

    async def run(self) -> None:
        """Track the horizon until cancelled, reconnecting after errors."""
        await listen_forever(self._conninfo, "event_listen", self._track, label="event horizon")

    async def _track(self, conn: ListenConnection) -> None:
        while True:
            await self._publish(await self._compute(conn))
            # Drain notifications; wake on the first one or after the poll interval.
            async for _ in conn.notifies(timeout=POLL_INTERVAL_S, stop_after=1):
                break


class EventReader:
    """Pages of the event history, bounded by a horizon."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def event_list_upto(
        self,
        tenant: str,
        *,
        after_seq: int,
        upto_seq: int,
        run_id: uuid.UUID | None = None,
        source_id: uuid.UUID | None = None,
        job_id: uuid.UUID | None = None,
        types: Sequence[str] = (),
        limit: int,
    ) -> list[Row]:
        """Events of ``tenant`` with ``after_seq < seq <= upto_seq`` matching the filters,
        in seq order. A ``types`` entry ending in ``.`` matches a type prefix."""
        exact = [t for t in types if not t.endswith(".")]
        prefixes = [t for t in types if t.endswith(".")]
        params: dict[str, Any] = {
            "tenant": tenant,
            "after_seq": after_seq,
            "upto_seq": upto_seq,
            "run_id": run_id,
            "source_id": source_id,
            "job_id": job_id,
            "types": exact or None,
            "prefixes": prefixes or None,
            "limit": limit,
        }
        async with self.db.connection() as conn:
            cur = await conn.execute(query("event_list_upto"), params)
            return await cur.fetchall()
