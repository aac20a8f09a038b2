"""Operator-facing reads and the dead-letter replay: the storage side of the
scheduler's operator RPCs (ListDeadLetters ... GetOverview).

Dead-letter rows are written by the leasing ledger when a job dies; a replay is the operator
retry of the job (:meth:`Ledger.job_retry`), which marks the entry replayed in the same
transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from orchestrator_core import FailedPrecondition
from orchestrator_pg._db import Row, TxContext
from orchestrator_pg._ledger import Ledger
from orchestrator_pg._queries import query

JOB_STATES = ("pending", "ready", "leased", "succeeded", "dead", "canceled")


class OperationsLedger(Ledger):
    """The ledger with dead-letter, incident, artifact and overview reads."""

    async def dead_letter_list(
        self,
        tenant: str,
        *,
        status: str | None,
        error_class: str | None,
        job_type: str | None,
        source_id: uuid.UUID | None,
        retryable: bool | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Row]:
        return await self._all(
            "dead_letter_list",
            {
                "tenant": tenant,
                "status": status,
                "error_class": error_class,
                "job_type": job_type,
                "source_id": source_id,
                "retryable": retryable,
                "after_failed_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit,
            },
        )

    async def dead_letter_get(self, tenant: str, entry_id: uuid.UUID) -> Row:
        return await self._one(
            "dead_letter_get", {"tenant": tenant, "id": entry_id}, "dead_letter", entry_id
        )

    async def dead_letter_clusters(self, tenant: str, status: str) -> list[Row]:
        return await self._all("dead_letter_clusters", {"tenant": tenant, "status": status})

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
        job = await self.job_retry(ctx, entry["job_id"])
        return await self.dead_letter_get(ctx.tenant, entry_id), job

    async def incident_list(
        self,
        tenant: str,
        *,
        state: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Row]:
        return await self._all(
            "incident_list",
            {
                "tenant": tenant,
                "state": state,
                "after_seen_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit,
            },
        )

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
            await self.job_get(tenant, job_id)  # NotFound for another tenant's job
        if run_id is not None:
            await self.run_get(tenant, run_id)
        return await self._all(
            "artifact_list",
            {
                "tenant": tenant,
                "job_id": job_id,
                "run_id": run_id,
                "after_id": after_id,
                "limit": limit,
            },
        )

    async def overview(self, tenant: str, window: timedelta) -> dict[str, Any]:
        """Job counts per state and attempt outcomes over ``window`` ending now."""
        now = self.db.clock.now()
        async with self.db.connection() as conn:
            cur = await conn.execute(query("overview_job_states"), {"tenant": tenant})
            by_state = dict.fromkeys(JOB_STATES, 0)
            for row in await cur.fetchall():
                by_state[row["state"]] = int(row["count"])
            cur = await conn.execute(
                query("overview_window"), {"tenant": tenant, "since": now - window}
            )
            outcomes = await cur.fetchone() or {}
            cur = await conn.execute(query("overview_counts"), {"tenant": tenant})
            counts = await cur.fetchone() or {}
        return {"now": now, "jobs_by_state": by_state, **dict(outcomes), **dict(counts)}


__all__ = ["JOB_STATES", "OperationsLedger"]
