"""Ports: the narrow Protocols that adapters implement and the domain depends on.

Only adapters (``orchestrator_pg``, the Redis adapter) import database drivers. Event
history has no port of its own for writing: every store operation that changes a job appends
its ``orchestrator.events`` row in the same transaction (transactional outbox), so an
``EventLog`` append outside a store would break that guarantee by construction.
"""

from __future__ import annotations

from typing import Protocol

from orchestrator_core.clock import Clock
from orchestrator_core.records import JobRecord

__all__ = ["Clock", "JobStore"]


class JobStore(Protocol):
    """Read and change jobs in the ledger; each change writes its event atomically."""

    async def get_job(self, tenant: str, job_id: str) -> JobRecord:
        """Fetch one job of ``tenant``.

        Raises:
            NotFound: No such job for this tenant (``JOB_NOT_FOUND``); a job of another
                tenant is reported the same way.
        """
        ...
