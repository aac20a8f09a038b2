"""PostgreSQL's clock is the authority for leases, schedules and every stored time.

Replicas compare times written by each other: a lease's ``expires_at`` set by one leases
replica is checked by the watchdog of another; a schedule's next fire time computed by one
scheduler is fired by the next leader. If each used its own wall clock, a replica whose clock
runs 30 s ahead would expire everyone's leases 30 s early and fire schedules early. One clock
must decide, and the only one every replica shares is the database's.

Yet the service keeps computing times itself (``TxContext.now``, the watchdog's cutoff), so
tests can inject a :class:`~orchestrator_core.FrozenClock` and drive time. So
:class:`DatabaseClock` is the service's wall clock corrected by the offset to PostgreSQL's
``clock_timestamp()``, measured at startup and every ``CLOCK_SYNC_S`` (the sample with the
shortest round trip wins; its error is at most half that round trip). A skewed replica then
agrees with the others to a few milliseconds, and ``orch_clock_offset_seconds`` shows by how
much its own clock is off.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from prometheus_client import Gauge

__all__ = ["CLOCK_OFFSET", "CLOCK_SYNC_S", "DatabaseClock"]

CLOCK_SYNC_S = 30.0
SAMPLES = 3
# Beyond this the offset is worth a warning: an operator should fix the machine's NTP.
WARN_OFFSET_S = 1.0

CLOCK_OFFSET = Gauge(
    "orch_clock_offset_seconds",
    "PostgreSQL's clock minus this process's wall clock; the process adds it to every time.",
)

_log = logging.getLogger("orchestrator_pg.clock")


def _wall() -> datetime:
    return datetime.now(UTC)


class DatabaseClock:
    """The local wall clock plus the last measured offset to PostgreSQL's clock.

    Args:
        local: The local wall clock (tests inject a skewed one).
    """

    def __init__(self, local: Callable[[], datetime] = _wall) -> None:
        self._local = local
        self._offset = timedelta(0)
        self.synced = False

    @property
    def offset(self) -> timedelta:
        """PostgreSQL's time minus the local wall clock, as last measured."""
        return self._offset

    def now(self) -> datetime:
        """The database's current time, estimated locally (no round trip)."""
        return self._local() + self._offset

    async def sync(self, database_now: Callable[[], Awaitable[datetime]]) -> timedelta:
        """Measure the offset again with ``database_now`` (one query per sample).

        Returns:
            The new offset.
        """
        best: tuple[timedelta, timedelta] | None = None  # (round trip, offset)
        for _ in range(SAMPLES):
            sent = self._local()
            remote = await database_now()
            received = self._local()
            round_trip = received - sent
            offset = remote - (sent + round_trip / 2)
            if best is None or round_trip < best[0]:
                best = (round_trip, offset)
        assert best is not None
        previous, self._offset = self._offset, best[1]
        seconds = self._offset.total_seconds()
        CLOCK_OFFSET.set(seconds)
        if abs(seconds) >= WARN_OFFSET_S and (
            not self.synced or abs((self._offset - previous).total_seconds()) >= WARN_OFFSET_S
        ):
            _log.warning(
                "this machine's clock is %+.3f s off PostgreSQL's; using the database's time "
                "(fix the machine's time synchronisation)",
                -seconds,
                extra={"clock_offset_s": seconds},
            )
        self.synced = True
        return self._offset
