"""The chainer: appends every event to its tenant's hash chain, once, in seq order.

It wakes on ``LISTEN orch_events`` (the outbox NOTIFYs after each statement), on a jittered
poll. Each pass asks the ledger for the settled seq (everything at or below it is
committed or never will be), reads the events after its cursor up to there in batches,
links them and writes links, anchors and the cursor in one transaction. A restart reads the
cursor and the chain heads back, so it misses nothing and chains nothing twice. Any number
of replicas may run: only the leader of :attr:`LeaderLoop.AUDIT_CHAIN` chains, and it
re-checks its leadership before every pass. A leader that lost its lock mid-pass cannot chain
an event twice either: a link's key is (tenant, seq), so its late write fails and rolls back.

Lag: after every pass the leader publishes how far the chain trails the outbox,
``orch_audit_chain_lag_events`` (seqs handed out past its cursor) and
``orch_audit_chain_lag_seconds`` (age of the oldest committed event not chained yet, 0 when
none), read in one statement. Only the leader knows; a replica that does not lead reports 0
for both (``orch_leader{loop="audit_chain"}`` tells whether anyone leads).
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Gauge

from orchestrator_audit._canonical import GENESIS_HASH, chain_hash, event_document
from orchestrator_core import Clock, SystemClock
from orchestrator_pg import (
    AuditLedger,
    ChainLink,
    LeaderLoop,
    LeaderOnlyLoop,
    MetricsReader,
)

BATCH_EVENTS = 2000
POLL_MIN_S = 0.5
POLL_MAX_S = 1.0
ERROR_BACKOFF_S = 1.0

_log = logging.getLogger("orchestrator.audit.chainer")

CHAIN_LAG_EVENTS = Gauge(
    "orch_audit_chain_lag_events",
    "Event seqs handed out past the audit chainer's cursor (leader only; else 0).",
)
CHAIN_LAG_SECONDS = Gauge(
    "orch_audit_chain_lag_seconds",
    "Age of the oldest committed event not yet chained, in seconds (leader only; else 0).",
)


class Chainer(LeaderOnlyLoop):
    """Chains events of every tenant (leader only).

    Args:
        ledger: the audit ledger (plain pool: chaining spans tenants by design).
        conninfo: database URL for the LISTEN / leader-lock connection.
        clock: the injected clock (``chained_at`` / ``anchored_at``).
        lock_key: another advisory lock key (tests that must not contend with a stack).
    """

    def __init__(
        self,
        ledger: AuditLedger,
        conninfo: str,
        *,
        clock: Clock | None = None,
        lock_key: int | None = None,
    ) -> None:
        super().__init__(conninfo, LeaderLoop.AUDIT_CHAIN, lock_key=lock_key)
        self._ledger = ledger
        self._lag = MetricsReader(ledger.db)
        self._clock = clock or SystemClock()
        self._heads: dict[str, str] = {}
        self._resumed = False  # cursor and heads read back since leadership was taken
        self.cursor = 0
        self.chained = 0
        self.lag_events = 0
        self.lag_seconds = 0.0
        self.lag_measurements = 0
        self.caught_up = asyncio.Event()

    async def run_forever(self) -> None:
        """Waits for leadership, then chains while it lasts, until cancelled: each pass once
        everything settled is chained, woken by ``orch_events`` (LISTENed on the leadership's
        connection) or a jittered poll. A failed pass (a database error) backs off, re-checks
        leadership and resumes from the stored cursor and heads."""

        async def chain() -> bool:
            if not self._resumed:
                await self.leadership.listen("event_listen")
                self.cursor = await self._ledger.cursor()
                self._heads = await self._ledger.heads()
                self._resumed = True
            await self.run_pass()
            return False

        async def wait() -> None:
            try:
                await self.leadership.wait_for_notification(
                    self.rng.uniform(POLL_MIN_S, POLL_MAX_S)
                )
            except Exception:  # the lock's connection broke: back off, re-check, resume
                _log.exception("chainer wait failed")
                self._resumed = False
                await asyncio.sleep(ERROR_BACKOFF_S)

        await self.lead(chain, wait, on_not_leading=self._stand_by)

    def _stand_by(self) -> None:
        """After a failed pass or without leadership: the next pass resumes from storage; a
        replica that does not lead reports no lag (only the leader knows it)."""
        self._resumed = False
        if not self.is_leader:
            self._report_lag(0, 0.0)

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
        await self._measure_lag()
        self.caught_up.set()
        self.passes += 1
        return linked

    async def _measure_lag(self) -> None:
        try:
            lag = await self._lag.audit_chain_lag(self.cursor)
        except Exception:  # a metric must never stop chaining
            _log.exception("measuring the chain lag failed")
            return
        seconds = 0.0
        if lag.oldest_unchained_at is not None:
            seconds = max(0.0, (self._clock.now() - lag.oldest_unchained_at).total_seconds())
        self._report_lag(lag.events, seconds)

    def _report_lag(self, events: int, seconds: float) -> None:
        self.lag_events, self.lag_seconds = events, seconds
        self.lag_measurements += 1
        CHAIN_LAG_EVENTS.set(events)
        CHAIN_LAG_SECONDS.set(seconds)
