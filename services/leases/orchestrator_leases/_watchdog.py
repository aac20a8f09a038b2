"""Watchdog: expires overdue leases; one leader among all leases replicas.

Every leases replica runs a watchdog; the one that leads :attr:`LeaderLoop.LEASE_WATCHDOG`
(see ``orchestrator_pg._leadership``) works, the others try again every interval and take
over when the leader's connection ends. Every ``ORCH_WATCHDOG_INTERVAL_S`` the leader
re-checks its leadership and calls :meth:`orchestrator_pg.LeaseLedger.lease_expire_batch` in
batches of ``EXPIRE_BATCH`` until nothing is overdue: each expired job goes back to ready with
backoff (reason ``lease_expired``) or dead with a dead-letter entry when its attempts are used up.
"""

from __future__ import annotations

import asyncio
import logging

from orchestrator_core import Clock, SystemClock, Unavailable
from orchestrator_leases import _metrics as metrics
from orchestrator_pg import LeaderLoop, LeaderOnlyLoop, LeaseLedger, TxContext

EXPIRE_BATCH = 500
ACTOR = "orchestrator-leases/watchdog"

_log = logging.getLogger("orchestrator_leases.watchdog")


class Watchdog(LeaderOnlyLoop):
    """Leader-elected lease expiry loop.

    Args:
        conninfo: PostgreSQL URL (the lock needs its own connection).
        ledger: the lease ledger.
        interval_s: pause between passes.
        clock: the clock whose "now" decides expiry.
        lock_key: another advisory lock key (tests that must not contend with a stack).
    """

    def __init__(
        self,
        conninfo: str,
        ledger: LeaseLedger,
        *,
        interval_s: float,
        clock: Clock | None = None,
        lock_key: int | None = None,
    ) -> None:
        super().__init__(conninfo, LeaderLoop.LEASE_WATCHDOG, lock_key=lock_key)
        self._ledger = ledger
        self._interval_s = interval_s
        self._clock = clock or SystemClock()

    async def run(self) -> None:
        """Contends for leadership and expires leases until cancelled; leader or not, the
        next try comes after the interval, jittered so standing-by replicas do not retry in
        step. (A pass never raises: :meth:`expire_overdue` logs its failures.)"""

        async def expire() -> bool:
            await self.expire_overdue()
            return False

        async def pause() -> None:
            await asyncio.sleep(self.jittered(self._interval_s))

        await self.lead(expire, pause, retry_s=self._interval_s)

    async def expire_overdue(self) -> int:
        """One pass: expires every overdue lease (in batches); returns how many."""
        total = 0
        while True:
            ctx = TxContext(tenant="", actor_subject=ACTOR, now=self._clock.now())
            try:
                outcomes = await self._ledger.lease_expire_batch(ctx, limit=EXPIRE_BATCH)
            except Unavailable as exc:
                _log.warning("watchdog pass skipped: %s", exc)
                break
            except Exception:
                # a pass must never end the service: log it, the next pass tries again
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
