"""Connection pool and per-transaction context.

Every write goes through :meth:`Database.transaction`, which sets, for that transaction
only, the tenant (for row-level security), the actor written into each event by the outbox
triggers, and the injected clock's "now" (``orchestrator.clock_now()`` in SQL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from orchestrator_core import Clock, SystemClock

Row = dict[str, Any]
POOL_MIN_SIZE = 2
POOL_MAX_SIZE = 20
POOL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TxContext:
    """Who acts, for which tenant, why (operator reason and ticket), at what time (the
    injected clock's now)."""

    tenant: str
    actor_subject: str = ""
    actor_scopes: Sequence[str] = field(default_factory=tuple)
    now: datetime | None = None
    reason: str = ""
    ticket: str = ""


class Database:
    """An async connection pool plus the transaction helper.

    Use as ``async with Database(url) as db:`` or call :meth:`open` / :meth:`close`.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        clock: Clock | None = None,
        min_size: int = POOL_MIN_SIZE,
        max_size: int = POOL_MAX_SIZE,
    ) -> None:
        self.conninfo = conninfo
        self.clock: Clock = clock or SystemClock()
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=POOL_TIMEOUT_S,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": False},
            name="orchestrator",
        )

    async def open(self) -> None:
        await self._pool.open(wait=True)

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self, ctx: TxContext) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """A connection inside a transaction carrying ``ctx``; commits on success."""
        now = ctx.now or self.clock.now()
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT set_config('orchestrator.tenant', %s, true),"
                " set_config('orchestrator.actor_subject', %s, true),"
                " set_config('orchestrator.actor_scopes', %s, true),"
                " set_config('orchestrator.now', %s, true)",
                (ctx.tenant, ctx.actor_subject, ",".join(ctx.actor_scopes), now.isoformat()),
            )
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """A pooled connection for reads (autocommit off, rolled back on return)."""
        async with self._pool.connection() as conn:
            yield conn
