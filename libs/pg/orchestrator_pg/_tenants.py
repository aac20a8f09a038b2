"""Tenants (``orchestrator.tenants``): the registry every tenant row refers to, written by
``stella orchestrator tenants`` (:mod:`orchestrator_pg._cli`). Queries: ``queries/tenants.sql``.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._queries import query
from orchestrator_pg._tx import fetch_all


class TenantStore:
    """Storage of tenants (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        # A tenant's registration runs as that tenant (row-level security, see SourceStore).
        self.db = db.isolated()

    async def tenant_upsert(self, tenant: str, display_name: str = "") -> Row:
        async with self.db.transaction(TxContext(tenant=tenant)) as conn:
            cur = await conn.execute(
                query("tenant_upsert"), {"id": tenant, "display_name": display_name}
            )
            row = await cur.fetchone()
            assert row is not None
            return row

    async def tenant_weight_set(self, tenant: str, weight: int) -> Row | None:
        """Sets a registered tenant's weight (its share of the worker slots against the other
        tenants with ready jobs); None when the tenant is not registered."""
        async with self.db.transaction(TxContext(tenant=tenant)) as conn:
            cur = await conn.execute(query("tenant_weight_set"), {"id": tenant, "weight": weight})
            return await cur.fetchone()

    async def tenant_list_by_ids(self, ids: Sequence[str]) -> list[Row]:
        """The registered tenants among ``ids`` (e.g. those a token grants), with weights."""
        return await fetch_all(self.db, "tenant_list_by_ids", {"ids": list(ids)})

    async def tenant_list(self) -> list[Row]:
        return await fetch_all(self.db, "tenant_list", {})
