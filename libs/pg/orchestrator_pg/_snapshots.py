"""Leader-only snapshots behind gauges: one replica measures, every replica could be scraped.

Counting something shared (the queue, the rate-limit buckets) on every scrape of every
replica would multiply its cost by replicas times scrapes and make ``sum`` over replicas
wrong. Instead the leader of one :class:`LeaderLoop` takes a snapshot every interval and
publishes it; the other replicas publish nothing, and a replica that loses leadership (or
whose snapshot fails) withdraws at once, so a stale replica never reports. A service's
custom collector reads :attr:`LeaderSnapshot.latest` of its instances at scrape time, so a
label set missing from the next snapshot disappears instead of lingering at its last value.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from orchestrator_pg._leadership import LeaderLoop, LeaderOnlyLoop

T = TypeVar("T")

_log = logging.getLogger("orchestrator.pg.snapshots")


class LeaderSnapshot(LeaderOnlyLoop, Generic[T]):
    """Leader-elected loop that publishes what ``take`` returns, every ``interval_s``.

    Args:
        conninfo: PostgreSQL URL (the lock needs its own connection).
        loop: the leader loop whose lock elects the publishing replica.
        take: one measurement (its failure is logged and withdraws the snapshot).
        interval_s: pause between snapshots (jittered down by up to 20 %).
        lock_key: another advisory lock key (tests that must not contend with a stack).
    """

    def __init__(
        self,
        conninfo: str,
        loop: LeaderLoop,
        take: Callable[[], Awaitable[T]],
        *,
        interval_s: float,
        lock_key: int | None = None,
    ) -> None:
        super().__init__(conninfo, loop, lock_key=lock_key)
        self._take = take
        self._interval_s = interval_s
        self.latest: tuple[T, float] | None = None
        """The published snapshot and its Unix time; None while not publishing."""

    @property
    def snapshots(self) -> int:
        """Snapshots published so far (a failed one is not counted)."""
        return self.passes

    async def run(self) -> None:
        """Contends for leadership and publishes snapshots until cancelled."""
        try:
            async with self.leadership:
                while True:
                    if await self.leadership.ensure():
                        await self.publish()
                    else:
                        self.latest = None
                    await asyncio.sleep(self.jittered(self._interval_s))
        finally:
            self.latest = None

    async def publish(self) -> None:
        """One snapshot, published; a failure withdraws it (never stale values)."""
        try:
            snapshot = await self._take()
        except Exception:  # a metric must never end the service: the next pass tries again
            _log.exception("%s snapshot failed", self.leadership.loop.label)
            self.latest = None
            return
        self.latest = (snapshot, time.time())
        self.passes += 1
