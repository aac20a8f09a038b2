"""Artifacts (``orchestrator.artifacts``): the outputs jobs reported. The hot path writes them
(:meth:`LeaseLedger.artifact_record_many`, fenced by lease); operators read them here.
Queries: ``queries/artifacts.sql``.
"""

from __future__ import annotations

import uuid

from orchestrator_pg._db import Database, Row
from orchestrator_pg._jobs import JobStore
from orchestrator_pg._runs import RunStore
from orchestrator_pg._tx import fetch_page


class ArtifactStore:
    """Operator reads of artifacts (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database, jobs: JobStore, runs: RunStore) -> None:
        # Tenant APIs: confined to their tenant by row-level security (see SourceStore).
        self.db = db.isolated()
        self.jobs = jobs
        self.runs = runs

    async def artifact_list(
        self,
        tenant: str,
        *,
        job_id: uuid.UUID | None,
        run_id: uuid.UUID | None,
        after_id: uuid.UUID | None,
        limit: int,
    ) -> list[Row]:
        if job_id is not None:
            await self.jobs.job_get(tenant, job_id)  # NotFound for another tenant's job
        if run_id is not None:
            await self.runs.run_get(tenant, run_id)
        filters = {"job_id": job_id, "run_id": run_id}
        return await fetch_page(self.db, "artifact_list", tenant, filters, after_id, limit)
