"""The tenant overview (GetOverview): job counts per state and attempt outcomes over a
window, read from jobs, events, runs and dead letters in one connection. Queries:
``job_count_by_state`` (``queries/jobs.sql``), ``event_count_outcomes``
(``queries/events.sql``) and ``overview_counts`` (``queries/overview.sql``); and what the
Console charts beside it: outcomes over several windows (the SLO view) and failures per source
and hour (``event_failure_heatmap``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from orchestrator_pg._db import Database, Row
from orchestrator_pg._queries import query
from orchestrator_pg._tx import fetch_all

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

    async def outcomes_over(
        self, tenant: str, windows: Sequence[timedelta]
    ) -> tuple[datetime, list[dict[str, Any]]]:
        """Attempt outcomes (succeeded, dead, failed_attempts) over each window ending now,
        counted as :meth:`overview` counts them; with the now they end at."""
        now = self.db.clock.now()
        outcomes = []
        async with self.db.reader(tenant) as conn:
            for window in windows:
                cur = await conn.execute(
                    query("event_count_outcomes"), {"tenant": tenant, "since": now - window}
                )
                outcomes.append(dict(await cur.fetchone() or {}))
        return now, outcomes

    async def failure_heatmap(self, tenant: str, since: datetime, until: datetime) -> list[Row]:
        """Finished and failed attempts per (source, UTC hour) in [since, until)."""
        params = {"tenant": tenant, "since": since, "until": until}
        return await fetch_all(self.db, "event_failure_heatmap", params)
