"""Leader-only upkeep of the event history's partitions.

Any number of scheduler replicas run this loop; the one that leads
:attr:`LeaderLoop.EVENT_PARTITIONS` does the work, the others just wait for their next turn.
Leadership is taken for a pass and given up after it: the pass runs once an hour, so an idle
replica holds neither a lock nor a connection in between. Each pass creates daily partitions a week
ahead (events written before a partition exists land in the default partition and are moved
when it is created) and, when retention is on, drops whole days older than it whose events
the audit chain has already anchored.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import psycopg

from orchestrator_core import Clock, SystemClock, Unavailable
from orchestrator_pg._leadership import LeaderLoop, Leadership
from orchestrator_pg._queries import query

MAINTENANCE_INTERVAL_S = 3600.0
PARTITION_DAYS_AHEAD = 7

log = logging.getLogger("orchestrator.pg.maintenance")


class EventPartitionMaintainer:
    """Creates event partitions ahead of time and applies retention (leader only).

    Args:
        conninfo: database URL.
        retention_days: drop days older than this; 0 keeps everything.
        clock: the injected clock.
    """

    def __init__(
        self, conninfo: str, *, retention_days: int = 0, clock: Clock | None = None
    ) -> None:
        self.conninfo = conninfo
        self.retention_days = retention_days
        self.clock = clock or SystemClock()

    async def run_once(self) -> tuple[int, list[str]]:
        """One pass. Returns (partitions created, partitions dropped); (0, []) when another
        replica leads."""
        async with Leadership(self.conninfo, LeaderLoop.EVENT_PARTITIONS) as leadership:
            if not await leadership.ensure():
                return 0, []
            conn = leadership.connection
            today = self.clock.now().date()
            cur = await conn.execute(
                query("event_ensure_partitions"),
                {"from_day": today - timedelta(days=1), "days": PARTITION_DAYS_AHEAD + 2},
            )
            created_row = await cur.fetchone()
            created = int(created_row["created"]) if created_row else 0
            dropped: list[str] = []
            if self.retention_days > 0:
                cur = await conn.execute(query("event_anchored_seq"))
                anchored = await cur.fetchone()
                cur = await conn.execute(
                    query("event_drop_partitions"),
                    {
                        "cutoff": today - timedelta(days=self.retention_days),
                        "max_seq": int(anchored["seq"]) if anchored else 0,
                    },
                )
                dropped = [r["dropped"] for r in await cur.fetchall()]
            return created, dropped

    async def run_forever(self) -> None:
        """Runs a pass every MAINTENANCE_INTERVAL_S until cancelled."""
        while True:
            try:
                created, dropped = await self.run_once()
                if created or dropped:
                    log.info(
                        "event partitions maintained",
                        # not "created": a LogRecord attribute (logging refuses it)
                        extra={"partitions_created": created, "partitions_dropped": dropped},
                    )
            except (psycopg.Error, Unavailable) as exc:
                log.warning("event partition maintenance failed: %s", exc)
            except Exception:
                # a pass must never end the scheduler: log it, the next pass tries again
                log.exception("event partition maintenance failed")
            await asyncio.sleep(MAINTENANCE_INTERVAL_S)
