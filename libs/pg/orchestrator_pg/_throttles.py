"""Throttles and blackouts: the PostgreSQL storage of the ratelimit service (queries in
``queries/throttles.sql``, ``queries/blackouts.sql``; the reference checks in
``queries/sources.sql`` and ``queries/jobs.sql``). It lives in the adapter so that no
service imports the driver (issue 17: drivers only in adapters).

Every write runs in one transaction with its audit entry (reason and ticket redacted, as
every audit entry is); the throttles outbox trigger (migration 0003) turns each throttles
row into a ``throttle.changed`` event in that same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from orchestrator_core import NotFound, new_id
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._queries import query
from orchestrator_pg._tx import audit_entry_write

__all__ = ["ThrottleStore"]


class ThrottleStore:
    """Storage operations of the ratelimit service: throttle records, blackouts and the
    audit entries of operator actions on buckets."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _audit(
        self, conn: psycopg.AsyncConnection[Row], ctx: TxContext, action: str, target: str
    ) -> None:
        await audit_entry_write(conn, ctx, action, target, ctx.now or self.db.clock.now())

    async def insert_throttle(
        self, ctx: TxContext, fields: Mapping[str, Any], *, audit_action: str | None = None
    ) -> Row:
        """Write one throttles row (and its event); with ``audit_action`` an audit entry too.

        Raises:
            NotFound: ``fields["source_id"]`` names no source.
        """
        params = {
            "id": new_id(self.db.clock),
            "tenant": ctx.tenant,
            "created_by": ctx.actor_subject,
            "ticket": ctx.ticket,
            "now": ctx.now or self.db.clock.now(),
            "expires_at": None,
            "job_id": None,
            **fields,
        }
        try:
            async with self.db.transaction(ctx) as conn:
                await self._check_refs(conn, ctx.tenant, params)
                cur = await conn.execute(query("throttle_insert"), params)
                row = await cur.fetchone()
                assert row is not None
                if audit_action is not None:
                    await self._audit(conn, ctx, audit_action, f"bucket/{params['host']}")
                return row
        except psycopg.errors.ForeignKeyViolation:
            raise NotFound("source", str(params.get("source_id"))) from None

    async def _check_refs(
        self, conn: psycopg.AsyncConnection[Row], tenant: str, params: Mapping[str, Any]
    ) -> None:
        """NOT_FOUND for a source or job of another tenant, exactly as for an unknown one."""
        for name, kind, key in (
            ("source_of_tenant", "source", "source_id"),
            ("job_of_tenant", "job", "job_id"),
        ):
            value = params.get(key)
            if value is None:
                continue
            cur = await conn.execute(query(name), {"tenant": tenant, "id": value})
            row = await cur.fetchone()
            if not row or not row["mine"]:
                raise NotFound(kind, str(value))

    async def check_refs(self, tenant: str, params: Mapping[str, Any]) -> None:
        """NOT_FOUND unless the ``source_id`` / ``job_id`` named are ``tenant``'s."""
        async with self.db.connection() as conn:
            await self._check_refs(conn, tenant, params)

    async def blackout_upsert(self, ctx: TxContext, fields: Mapping[str, Any]) -> Row:
        """Create a blackout of ``ctx.tenant`` (no id) or replace the tenant's blackout with
        the given id.

        Raises:
            NotFound: the id names no blackout of this tenant (another tenant's id answers
                the same), or the source is not the tenant's.
        """
        params = {
            "tenant": ctx.tenant,
            "created_by": ctx.actor_subject,
            "reason": ctx.reason,
            "ticket": ctx.ticket,
            "now": ctx.now or self.db.clock.now(),
            **fields,
        }
        replace = params.get("id") is not None
        if not replace:
            params["id"] = new_id(self.db.clock)
        if params.get("recurrence") is not None:
            params["recurrence"] = Jsonb(params["recurrence"])
        try:
            async with self.db.transaction(ctx) as conn:
                await self._check_refs(conn, ctx.tenant, params)
                cur = await conn.execute(
                    query("blackout_replace" if replace else "blackout_insert"), params
                )
                row = await cur.fetchone()
                if row is None:
                    raise NotFound("blackout", str(params["id"]))
                await self._audit(conn, ctx, "blackout.set", f"blackout/{row['id']}")
                return row
        except psycopg.errors.ForeignKeyViolation:
            raise NotFound("source", str(params.get("source_id"))) from None

    async def blackout_delete(self, ctx: TxContext, blackout_id: uuid.UUID) -> None:
        """Delete a blackout of ``ctx.tenant``.

        Raises:
            NotFound: no such blackout in this tenant.
        """
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("blackout_delete"), {"tenant": ctx.tenant, "id": blackout_id}
            )
            if await cur.fetchone() is None:
                raise NotFound("blackout", str(blackout_id))
            await self._audit(conn, ctx, "blackout.delete", f"blackout/{blackout_id}")

    async def blackout_list(
        self, tenant: str, source_id: uuid.UUID | None, after_id: uuid.UUID | None, limit: int
    ) -> list[Row]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                query("blackout_list"),
                {"tenant": tenant, "source_id": source_id, "after_id": after_id, "limit": limit},
            )
            return await cur.fetchall()

    async def blackout_candidates(self, tenant: str, now: Any) -> list[Row]:
        async with self.db.connection() as conn:
            cur = await conn.execute(query("blackout_candidates"), {"tenant": tenant, "now": now})
            return await cur.fetchall()

    async def audit(self, ctx: TxContext, action: str, target: str) -> None:
        """An audit entry on its own (operator actions that write no other row)."""
        async with self.db.transaction(ctx) as conn:
            await self._audit(conn, ctx, action, target)
