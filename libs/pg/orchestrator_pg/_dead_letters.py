"""The dead-letter queue (``orchestrator.dead_letter``): operator reads and the replay.

Rows are written by the hot path (:mod:`orchestrator_pg._leasing`) when a job dies; a replay
is the operator retry of the job (:meth:`JobStore.job_retry`), which marks the entry replayed
in the same transaction. Queries: ``queries/dead_letters.sql``.
"""

from __future__ import annotations

import uuid

from orchestrator_core import FailedPrecondition
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._jobs import JobStore
from orchestrator_pg._tx import fetch_all, fetch_one, paged_read


class DeadLetterStore:
    """Storage of dead-letter entries (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database, jobs: JobStore) -> None:
        # Tenant APIs: confined to their tenant by row-level security (see SourceStore).
        self.db = db.isolated()
        self.jobs = jobs

    dead_letter_list = paged_read(
        "dead_letter_list",
        "status",
        "error_class",
        "job_type",
        "source_id",
        "retryable",
        cursor="after",
    )

    async def dead_letter_get(self, tenant: str, entry_id: uuid.UUID) -> Row:
        return await fetch_one(
            self.db, "dead_letter_get", {"tenant": tenant, "id": entry_id}, "dead_letter", entry_id
        )

    async def dead_letter_clusters(self, tenant: str, status: str) -> list[Row]:
        return await fetch_all(
            self.db, "dead_letter_clusters", {"tenant": tenant, "status": status}
        )

    async def dead_letter_replay(self, ctx: TxContext, entry_id: uuid.UUID) -> tuple[Row, Row]:
        """Retry the dead job of a pending entry.

        Returns:
            ``(entry, job)`` after the replay.

        Raises:
            NotFound: No such entry in the tenant.
            FailedPrecondition: The entry is not pending (already replayed, resolved or
                discarded) or its job is no longer dead.
        """
        entry = await self.dead_letter_get(ctx.tenant, entry_id)
        if entry["status"] != "pending":
            raise FailedPrecondition(
                f"dead-letter entry {entry_id} is {entry['status']}; only pending entries "
                "can be replayed",
                reason="DEAD_LETTER_NOT_PENDING",
                metadata={"status": entry["status"]},
            )
        job = await self.jobs.job_retry(ctx, entry["job_id"])
        return await self.dead_letter_get(ctx.tenant, entry_id), job
