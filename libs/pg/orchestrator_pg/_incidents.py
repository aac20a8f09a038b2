"""Incidents (``orchestrator.incidents``): operator-facing trouble reports, newest first.
Queries: ``queries/incidents.sql``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from orchestrator_pg._db import Database, Row
from orchestrator_pg._tx import fetch_all


class IncidentStore:
    """Storage of incidents (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        # Tenant APIs: confined to their tenant by row-level security (see SourceStore).
        self.db = db.isolated()

    async def incident_list(
        self,
        tenant: str,
        *,
        state: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Row]:
        return await fetch_all(
            self.db,
            "incident_list",
            {
                "tenant": tenant,
                "state": state,
                "after_seen_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit,
            },
        )
