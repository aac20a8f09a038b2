"""Watchdog: expires overdue leases; one leader among all leases replicas.

Leadership is a session advisory lock (``pg_try_advisory_lock``) held on a dedicated
connection: any number of replicas run a watchdog, exactly one holds the lock and works, the
others retry every ``LEADER_RETRY_INTERVALS`` intervals and take over when the leader's
connection ends. Every ``ORCH_WATCHDOG_INTERVAL_S`` the leader checks it still holds the
lock and calls :meth:`orchestrator_pg.LeaseLedger.expire` in batches of ``EXPIRE_BATCH``
until nothing is overdue: each expired job goes back to ready with backoff (reason
``lease_expired``) or dead with a dead-letter entry when its attempts are used up.
"""

from __future__ import annotations

import asyncio
import logging
import random

import psycopg
from psycopg.rows import dict_row

from orchestrator_core import Clock, SystemClock
from orchestrator_leases import _metrics as metrics
from orchestrator_pg import LeaseLedger, TxContext, query

# Arbitrary but fixed ("STORCH" + 0x0002): every leases replica contends for the same lock.
WATCHDOG_LOCK_KEY = 0x5354_4F52_4348_0002
EXPIRE_BATCH = 500
LEADER_RETRY_INTERVALS = 5
RECONNECT_MAX_S = 5.0
ACTOR = "orchestrator-leases/watchdog"

_log = logging.getLogger("orchestrator_leases.watchdog")


class Watchdog:
    """Leader-elected lease expiry loop.

    Args:
        conninfo: PostgreSQL URL (the lock needs its own connection).
        ledger: the lease ledger.
        interval_s: pause between passes.
        clock: the clock whose "now" decides expiry.
        lock_key: advisory lock key (tests use their own).
    """

    def __init__(
        self,
        conninfo: str,
        ledger: LeaseLedger,
        *,
        interval_s: float,
        clock: Clock | None = None,
        lock_key: int = WATCHDOG_LOCK_KEY,
    ) -> None:
        self._conninfo = conninfo
        self._ledger = ledger
        self._interval_s = interval_s
        self._clock = clock or SystemClock()
        self._key = lock_key
        self.is_leader = False
        self.passes = 0

    async def run(self) -> None:
        """Contends for leadership and expires leases until cancelled."""
        delay = self._interval_s
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, row_factory=dict_row
                ) as conn:
                    delay = self._interval_s
                    await self._serve(conn)
            except psycopg.OperationalError as exc:
                _log.warning("watchdog connection failed (%s); retrying", exc)
            finally:
                if self.is_leader:
                    _log.info("watchdog leadership lost")
                self.is_leader = False
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _serve(self, conn: psycopg.AsyncConnection[dict[str, object]]) -> None:
        while True:
            if not self.is_leader:
                cur = await conn.execute(query("leader_try_lock"), {"key": self._key})
                row = await cur.fetchone()
                self.is_leader = bool(row and row["acquired"])
                if self.is_leader:
                    _log.info("watchdog leadership acquired")
                else:
                    await asyncio.sleep(self._interval_s * LEADER_RETRY_INTERVALS)
                    continue
            cur = await conn.execute(query("leader_check"), {"key": self._key})
            row = await cur.fetchone()
            if not (row and row["held"]):
                self.is_leader = False
                continue
            await self.expire_overdue()
            await asyncio.sleep(self._interval_s)

    async def expire_overdue(self) -> int:
        """One pass: expires every overdue lease (in batches); returns how many."""
        total = 0
        while True:
            ctx = TxContext(tenant="", actor_subject=ACTOR, now=self._clock.now())
            try:
                outcomes = await self._ledger.expire(ctx, limit=EXPIRE_BATCH)
            except psycopg.Error:
                _log.exception("watchdog pass failed")
                break
            total += len(outcomes)
            if len(outcomes) < EXPIRE_BATCH:
                break
        self.passes += 1
        if total:
            metrics.LEASES_EXPIRED.inc(total)
            _log.info("watchdog expired %d leases", total, extra={"expired": total})
        return total
