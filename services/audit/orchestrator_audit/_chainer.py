"""The chainer: appends every event to its tenant's hash chain, once, in seq order.

It wakes on ``LISTEN orch_events`` (the outbox NOTIFYs after each statement), on a jittered
poll, or on stop. Each pass asks the ledger for the settled seq (everything at or below it is
committed or never will be), reads the events after its cursor up to there in batches,
links them and writes links, anchors and the cursor in one transaction. A restart reads the
cursor and the chain heads back, so it misses nothing and chains nothing twice. Any number
of replicas may run: only the holder of the advisory lock chains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import psycopg

from orchestrator_audit._canonical import GENESIS_HASH, chain_hash, event_document
from orchestrator_core import Clock, SystemClock
from orchestrator_pg import AuditLedger, ChainLink

CHAIN_LOCK_KEY = 0x5354_4F52_4348_0005
BATCH_EVENTS = 2000
POLL_MIN_S = 0.5
POLL_MAX_S = 1.0
LEADER_RETRY_S = 1.0
ERROR_BACKOFF_S = 1.0

_log = logging.getLogger("orchestrator.audit.chainer")


class Chainer:
    """Chains events of every tenant (leader only).

    Args:
        ledger: the audit ledger (plain pool: chaining spans tenants by design).
        conninfo: database URL for the LISTEN / leader-lock connection.
        clock: the injected clock (``chained_at`` / ``anchored_at``).
    """

    def __init__(self, ledger: AuditLedger, conninfo: str, *, clock: Clock | None = None) -> None:
        self._ledger = ledger
        self._conninfo = conninfo
        self._clock = clock or SystemClock()
        self._wake = asyncio.Event()
        self._heads: dict[str, str] = {}
        self.cursor = 0
        self.chained = 0
        self.is_leader = False
        self.caught_up = asyncio.Event()

    async def run_forever(self) -> None:
        """Waits for the leader lock, then chains until cancelled."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    while not await self._try_lead(conn):  # noqa: ASYNC110 - a lock, no event
                        await asyncio.sleep(LEADER_RETRY_S)
                    self.is_leader = True
                    await conn.execute("LISTEN orch_events")
                    listener = asyncio.create_task(self._listen(conn), name="audit:listen")
                    try:
                        await self._lead()
                    finally:
                        listener.cancel()
                        with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                            await listener
            except psycopg.Error as exc:
                self.is_leader = False
                _log.warning("chainer lost its database connection: %s", exc)
                await asyncio.sleep(ERROR_BACKOFF_S)

    async def _try_lead(self, conn: psycopg.AsyncConnection) -> bool:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (CHAIN_LOCK_KEY,))
        row = await cur.fetchone()
        return bool(row and row[0])

    async def _listen(self, conn: psycopg.AsyncConnection) -> None:
        async for _ in conn.notifies():
            self._wake.set()

    async def _lead(self) -> None:
        self.cursor = await self._ledger.cursor()
        self._heads = await self._ledger.heads()
        rng = random.Random()
        while True:
            self._wake.clear()
            await self.run_pass()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), rng.uniform(POLL_MIN_S, POLL_MAX_S))

    async def run_pass(self) -> int:
        """Chains everything settled; returns how many events it linked."""
        settled = await self._ledger.settled_seq()
        linked = 0
        while self.cursor < settled:
            rows = await self._ledger.events_settled(self.cursor, settled, BATCH_EVENTS)
            links: list[ChainLink] = []
            heads = dict(self._heads)
            for row in rows:
                tenant = row["tenant"]
                prev = heads.get(tenant, GENESIS_HASH)
                link_hash = chain_hash(prev, event_document(row))
                links.append(ChainLink(tenant, int(row["seq"]), row["event_id"], prev, link_hash))
                heads[tenant] = link_hash
            # a short batch reached `settled`: the rest of the range holds no events
            cursor = int(rows[-1]["seq"]) if len(rows) == BATCH_EVENTS else settled
            await self._ledger.append(links, cursor, self._clock.now(), anchor=True)
            self._heads = heads
            self.cursor = cursor
            linked += len(links)
            self.chained += len(links)
        if linked:
            _log.debug("chained %d events up to seq %d", linked, self.cursor)
        self.caught_up.set()
        return linked
