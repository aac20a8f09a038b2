"""The tenant overview (GetOverview): job counts per state and attempt outcomes over a
window, read from jobs, events, runs and dead letters in one connection. Queries:
``job_count_by_state`` (``queries/jobs.sql``), ``event_count_outcomes``
(``queries/events.sql``) and ``overview_counts`` (``queries/overview.sql``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchestrator_pg._db import Database
from orchestrator_pg._queries import query

JOB_STATES = ("pending", "ready", "leased", "succeeded", "dead", "canceled")


class OverviewStore:
    """The overview figures of a tenant."""

    def __init__(self, db: Database) -> None:
        self.db = db.isolated()

    async def overview(self, tenant: str, window: timedelta) -> dict[str, Any]:
        """Job counts per state and attempt outcomes over ``window`` ending now."""
        now = self.db.clock.now()
        async with self.db.connection() as conn:
            cur = await conn.execute(query("job_count_by_state"), {"tenant": tenant})
            by_state = dict.fromkeys(JOB_STATES, 0)
            for row in await cur.fetchall():
                by_state[row["state"]] = int(row["count"])
            cur = await conn.execute(
                query("event_count_outcomes"), {"tenant": tenant, "since": now - window}
            )
            outcomes = await cur.fetchone() or {}
            cur = await conn.execute(query("overview_counts"), {"tenant": tenant})
            counts = await cur.fetchone() or {}
        return {"now": now, "jobs_by_state": by_state, **dict(outcomes), **dict(counts)}
