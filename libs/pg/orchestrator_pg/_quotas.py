"""Tenant quotas: storage and operator changes.

Quotas (``orchestrator.quotas``) belong to a tenant and apply to the whole tenant
(``job_type = ''``) or to one job type. Every change records the operator's reason and
ticket on the row and in an audit entry, in the same transaction.

Backpressure on ``max_queued`` is not here but in :mod:`orchestrator_pg._backpressure`,
which every job insert of the :class:`~orchestrator_pg.Ledger` goes through.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import errors as pg_errors

from orchestrator_core import AlreadyExists, NotFound, new_id
from orchestrator_pg._db import Row, TxContext
from orchestrator_pg._ledger import Ledger, _audit, _foreign_key_error
from orchestrator_pg._queries import query

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


class QuotaLedger(Ledger):
    """The ledger with quota storage."""

    # ---------------------------------------------------------------- quotas

    async def quota_create(self, ctx: TxContext, fields: QuotaFields) -> Row:
        now = self._now(ctx)
        params = _quota_params(fields) | {
            "id": uuid.UUID(new_id(self.db.clock)),
            "tenant": ctx.tenant,
            "job_type": fields.job_type,
            "reason": ctx.reason,
            "ticket": ctx.ticket,
            "now": now,
        }
        try:
            async with self.db.transaction(ctx) as conn:
                cur = await conn.execute(query("quota_insert"), params)
                row = await cur.fetchone()
                await _audit(conn, ctx, "quota.create", f"quotas/{params['id']}", now)
        except pg_errors.UniqueViolation:
            scope = f"job type '{fields.job_type}'" if fields.job_type else "the whole tenant"
            raise AlreadyExists(
                f"tenant '{ctx.tenant}' already has a quota for {scope}; change it with "
                "UpdateQuota",
                reason="QUOTA_EXISTS",
                metadata={"job_type": fields.job_type},
            ) from None
        except pg_errors.ForeignKeyViolation as exc:
            raise _foreign_key_error(exc, ctx.tenant) from None
        assert row is not None
        return row

    async def quota_get(self, tenant: str, quota_id: uuid.UUID) -> Row:
        return await self._one("quota_get", {"tenant": tenant, "id": quota_id}, "quota", quota_id)

    async def quota_list(
        self,
        tenant: str,
        *,
        job_type: str | None,
        paused: bool | None,
        after_id: uuid.UUID | None,
        limit: int,
    ) -> list[Row]:
        return await self._all(
            "quota_list",
            {
                "tenant": tenant,
                "job_type": job_type,
                "paused": paused,
                "after_id": after_id,
                "limit": limit,
            },
        )

    async def quota_update(
        self, ctx: TxContext, quota_id: uuid.UUID, fields: QuotaFields, mask: Sequence[str]
    ) -> Row:
        """Changes the fields named in ``mask``; the reason and ticket of ``ctx`` replace
        those recorded on the quota."""
        now = self._now(ctx)
        params = _quota_params(fields) | {
            "tenant": ctx.tenant,
            "id": quota_id,
            "mask": list(mask),
            "reason": ctx.reason,
            "ticket": ctx.ticket,
            "now": now,
        }
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(query("quota_update"), params)
            row = await cur.fetchone()
            if row is not None:
                await _audit(conn, ctx, "quota.update", f"quotas/{quota_id}", now)
        if row is None:
            raise NotFound("quota", str(quota_id))
        return row

    async def quota_delete(self, ctx: TxContext, quota_id: uuid.UUID) -> None:
        now = self._now(ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(query("quota_delete"), {"tenant": ctx.tenant, "id": quota_id})
            row = await cur.fetchone()
            if row is not None:
                await _audit(conn, ctx, "quota.delete", f"quotas/{quota_id}", now)
        if row is None:
            raise NotFound("quota", str(quota_id))


def _quota_params(fields: QuotaFields) -> dict[str, Any]:
    return {
        "max_active": fields.max_active,
        "max_per_hour": fields.max_per_hour,
        "burst": fields.burst,
        "max_queued": fields.max_queued,
        "paused": fields.paused,
    }
