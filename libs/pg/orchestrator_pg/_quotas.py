"""Tenant quotas (``orchestrator.quotas``): storage, operator changes and the pause flags
(a paused quota row pauses the tenant's or a job type's jobs). Queries: ``queries/quotas.sql``.

Quotas (``orchestrator.quotas``) belong to a tenant and apply to the whole tenant
(``job_type = ''``) or to one job type. Every change records the operator's reason and
ticket on the row and in an audit entry, in the same transaction.

Backpressure on ``max_queued`` is not here but in :mod:`orchestrator_pg._backpressure`,
which every job insert goes through (:mod:`orchestrator_pg._job_insert`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator_core import AlreadyExists, new_id
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._queries import query
from orchestrator_pg._tx import (
    audit_entry_write,
    create_audited,
    delete_audited,
    fetch_all,
    fetch_one,
    fields_params,
    now_of,
    paged_read,
    write_audited,
)

QUOTA_MUTABLE_FIELDS = ("max_active", "max_per_hour", "burst", "max_queued", "paused")


@dataclass(frozen=True)
class QuotaFields:
    """The writable fields of a quota (0 = unlimited for the limits)."""

    job_type: str = ""
    max_active: int = 0
    max_per_hour: int = 0
    burst: int = 0
    max_queued: int = 0
    paused: bool = False


class QuotaStore:
    """Storage of quotas and of the pause flags they carry (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        # Tenant APIs: confined to their tenant by row-level security (see SourceStore).
        self.db = db.isolated()

    async def quota_create(self, ctx: TxContext, fields: QuotaFields) -> Row:
        scope = f"job type '{fields.job_type}'" if fields.job_type else "the whole tenant"
        return await create_audited(
            self.db,
            ctx,
            "quota",
            fields,
            extra={"reason": ctx.reason, "ticket": ctx.ticket},
            taken=AlreadyExists(
                f"tenant '{ctx.tenant}' already has a quota for {scope}; change it with "
                "UpdateQuota",
                reason="QUOTA_EXISTS",
                metadata={"job_type": fields.job_type},
            ),
        )

    async def quota_get(self, tenant: str, quota_id: uuid.UUID) -> Row:
        return await fetch_one(
            self.db, "quota_get", {"tenant": tenant, "id": quota_id}, "quota", quota_id
        )

    async def quota_usage_list(self, tenant: str) -> list[Row]:
        """Each of the tenant's quotas with its usage now (active, queued, hourly tokens
        left), counted as the claim counts it."""
        params = {"tenant": tenant, "now": self.db.clock.now()}
        return await fetch_all(self.db, "quota_usage_list", params)

    quota_list = paged_read("quota_list", "job_type", "paused")

    async def quota_update(
        self, ctx: TxContext, quota_id: uuid.UUID, fields: QuotaFields, mask: Sequence[str]
    ) -> Row:
        """Changes the fields named in ``mask``; the reason and ticket of ``ctx`` replace
        those recorded on the quota."""
        params = fields_params(fields) | {
            "tenant": ctx.tenant,
            "id": quota_id,
            "mask": list(mask),
            "reason": ctx.reason,
            "ticket": ctx.ticket,
            "now": now_of(self.db, ctx),
        }
        return await write_audited(
            self.db, ctx, "quota_update", params, action="quota.update", target=("quota", quota_id)
        )

    async def quota_delete(self, ctx: TxContext, quota_id: uuid.UUID) -> None:
        await delete_audited(self.db, ctx, "quota", quota_id)

    async def quota_pause_upsert(self, ctx: TxContext, job_type: str, *, paused: bool) -> Row:
        """Pauses (or resumes) the tenant's jobs (``job_type`` ``""``) or one job type's:
        they stay ready and are not leased until resumed. Returns the quota row holding
        the flag."""
        now = now_of(self.db, ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("quota_pause_upsert"),
                {
                    "id": uuid.UUID(new_id(self.db.clock)),
                    "tenant": ctx.tenant,
                    "job_type": job_type,
                    "paused": paused,
                    "reason": ctx.reason,
                    "ticket": ctx.ticket,
                    "now": now,
                },
            )
            row = await cur.fetchone()
            target = f"job-types/{job_type}" if job_type else "tenant"
            await audit_entry_write(
                conn, ctx, "jobs.pause" if paused else "jobs.resume", target, now
            )
        assert row is not None
        return row
