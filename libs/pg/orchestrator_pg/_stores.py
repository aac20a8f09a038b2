"""The stores of the scheduler's tables, built together over one :class:`Database`.

One class per table family (STYLE rule 21), composed where an operation spans families (a
backfill cancels its run, a dead-letter replay retries its job); a service receives the
bundle and names the store it calls (``stores.quotas.quota_get``).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator_pg._artifacts import ArtifactStore
from orchestrator_pg._backfills import BackfillStore
from orchestrator_pg._db import Database
from orchestrator_pg._dead_letters import DeadLetterStore
from orchestrator_pg._incidents import IncidentStore
from orchestrator_pg._jobs import JobStore
from orchestrator_pg._overview import OverviewStore
from orchestrator_pg._quotas import QuotaStore
from orchestrator_pg._runs import RunStore
from orchestrator_pg._schedules import ScheduleStore
from orchestrator_pg._sources import SourceStore
from orchestrator_pg._tenants import TenantStore
from orchestrator_pg._webhooks import WebhookStore


@dataclass(frozen=True)
class Stores:
    """Every store of the scheduler's tables (sources ... overview), sharing one pool."""

    tenants: TenantStore
    sources: SourceStore
    runs: RunStore
    jobs: JobStore
    quotas: QuotaStore
    schedules: ScheduleStore
    backfills: BackfillStore
    dead_letters: DeadLetterStore
    incidents: IncidentStore
    artifacts: ArtifactStore
    overview: OverviewStore
    webhooks: WebhookStore

    @classmethod
    def over(cls, db: Database) -> Stores:
        """The stores over ``db`` (no I/O: the pool is opened and closed by its owner)."""
        runs, jobs = RunStore(db), JobStore(db)
        return cls(
            tenants=TenantStore(db),
            sources=SourceStore(db),
            runs=runs,
            jobs=jobs,
            quotas=QuotaStore(db),
            schedules=ScheduleStore(db),
            backfills=BackfillStore(db, runs),
            dead_letters=DeadLetterStore(db, jobs),
            incidents=IncidentStore(db),
            artifacts=ArtifactStore(db, jobs, runs),
            overview=OverviewStore(db),
            webhooks=WebhookStore(db),
        )
