"""Connection pool and per-transaction context.

Every write goes through :meth:`Database.transaction`, which sets, for that transaction
only, the tenant, the actor written into each event by the outbox triggers, and the injected
clock's "now" (``orchestrator.clock_now()`` in SQL). Unless a clock is injected (tests), that
clock is a :class:`~orchestrator_pg._clock.DatabaseClock`: PostgreSQL's time is the authority
for every replica (see that module), kept in sync by a task the open pool runs.

Row-level security (migration 0006). Every tenant table has a policy that, when the
transaction sets ``orchestrator.isolate_tenant``, admits only that tenant's rows (reads and
writes). Tenant-scoped code asks for it explicitly: :meth:`Database.isolated` returns a view
of the same pool whose :meth:`~Database.transaction` isolates to ``ctx.tenant``, and
:meth:`Database.reader` opens an isolated read-only transaction. The stores of tenant APIs
(:class:`~orchestrator_pg.Stores`, audit) use them. Platform paths that span tenants by
design — fair-share claims (filtered by the worker token's tenants in SQL), the lease
watchdog, partition maintenance, audit chaining — use the plain pool and stay unrestricted.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from orchestrator_core import Aborted, Clock, InvalidArgument, Unavailable
from orchestrator_pg._clock import CLOCK_SYNC_S, DatabaseClock

Row = dict[str, Any]
POOL_MIN_SIZE = 2
POOL_MAX_SIZE = 20
POOL_TIMEOUT_S = 10.0


@contextmanager
def storage_errors_mapped() -> Iterator[None]:
    """Driver errors that are the caller's or the network's, as domain errors.

    * PostgreSQL text holds no NUL byte (nor, in JSON, ``\\u0000``): a request carrying one
      is bad input, INVALID_ARGUMENT, not an internal error (schemathesis found it).
    * A lost or refused connection (SQLSTATE class 08, an administrator or crash shutdown,
      57P01-57P03, or no SQLSTATE at all: the socket closed) and a pool that found no
      connection in time are :class:`Unavailable`: callers answer UNAVAILABLE (retryable)
      and background loops log and try again, while the pool reconnects by itself.
    * A deadlock or serialization failure (SQLSTATE class 40: PostgreSQL rolled the
      transaction back) is :class:`Aborted`: nothing was written, and the same request may
      simply be sent again.
    Other driver errors (constraint violations) pass through for the ledger to map where it
    knows what they mean.
    """
    try:
        yield
    except (
        psycopg.errors.UntranslatableCharacter,
        psycopg.errors.CharacterNotInRepertoire,
    ) as exc:
        raise InvalidArgument(
            f"a text value cannot be stored ({exc.diag.message_primary}); remove NUL characters"
        ) from exc
    except psycopg.DataError as exc:
        if "NUL" not in str(exc):
            raise
        raise InvalidArgument(
            "a text value contains a NUL (0x00) character, which cannot be stored; remove it"
        ) from exc
    except PoolTimeout as exc:
        raise Unavailable("the database did not answer in time; retry") from exc
    except psycopg.OperationalError as exc:
        state = exc.sqlstate or ""
        if state.startswith("40"):  # psycopg's DeadlockDetected etc. do not share a base
            raise Aborted(
                f"the database rolled the transaction back ({exc.diag.message_primary}); retry"
            ) from exc
        if state and not state.startswith(("08", "57P01", "57P02", "57P03")):
            raise
        raise Unavailable("the database connection was lost; retry") from exc


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


ISOLATION_SQL = (
    "SELECT set_config('orchestrator.tenant', %s, true),"
    " set_config('orchestrator.isolate_tenant', %s, true)"
)
PING_SQL = "SELECT 1"
CLOCK_SQL = "SELECT clock_timestamp() AS now"

_log = logging.getLogger("orchestrator_pg")


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
        self.isolating = False
        self.conninfo = conninfo
        self.clock: Clock = clock if clock is not None else DatabaseClock()
        # A DatabaseClock (the default, or a test's with a skewed local clock) is kept in sync.
        self._database_clock = self.clock if isinstance(self.clock, DatabaseClock) else None
        self._clock_sync: asyncio.Task[None] | None = None
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=POOL_TIMEOUT_S,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": False},
            name="orchestrator",
        )

    async def open(self, *, wait: bool = True) -> None:
        """Opens the pool and starts keeping the database clock in sync.

        ``wait=False`` returns at once and lets the pool connect in the background, for a
        caller that must start while PostgreSQL is away (the gateway): its transactions raise
        :class:`Unavailable` until the database answers, and the clock's first offset is
        measured by the periodic sync instead of before returning."""
        await self._pool.open(wait=wait)
        if self._database_clock is not None:
            if wait:
                await self._database_clock.sync(self._database_now)
            self._clock_sync = asyncio.create_task(self._keep_clock(), name="database-clock")

    async def close(self) -> None:
        if self._clock_sync is not None:
            self._clock_sync.cancel()
            # Bounded: closing the pool must not wait on a sync stuck in a dead connection.
            await asyncio.wait([self._clock_sync], timeout=5.0)
            self._clock_sync = None
        await self._pool.close()

    async def _database_now(self) -> datetime:
        with storage_errors_mapped():
            async with self._pool.connection() as conn:
                cur = await conn.execute(CLOCK_SQL)
                row = await cur.fetchone()
                await conn.rollback()
        assert row is not None
        now: datetime = row["now"]
        return now

    async def _keep_clock(self) -> None:
        assert self._database_clock is not None
        while True:
            await asyncio.sleep(CLOCK_SYNC_S)
            try:
                await self._database_clock.sync(self._database_now)
            except Unavailable as exc:
                # The last offset stays valid; clocks drift by milliseconds per minute.
                _log.warning("could not re-measure the clock offset to PostgreSQL: %s", exc)

    def isolated(self) -> Database:
        """A view of this database (same pool and clock) whose transactions are confined to
        their ``ctx.tenant`` by row-level security; opening or closing it acts on the pool.

        A context without a tenant (``TxContext(tenant="")``) is a platform transaction —
        the schedule firer's pass over every tenant's due schedules — and is not confined.
        """
        view = copy.copy(self)
        view.isolating = True
        return view

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self, ctx: TxContext) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """A connection inside a transaction carrying ``ctx``; commits on success."""
        now = ctx.now or self.clock.now()
        with storage_errors_mapped():
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(
                    "SELECT set_config('orchestrator.tenant', %s, true),"
                    " set_config('orchestrator.actor_subject', %s, true),"
                    " set_config('orchestrator.actor_scopes', %s, true),"
                    " set_config('orchestrator.now', %s, true),"
                    " set_config('orchestrator.isolate_tenant', %s, true)",
                    (
                        ctx.tenant,
                        ctx.actor_subject,
                        ",".join(ctx.actor_scopes),
                        now.isoformat(),
                        ctx.tenant if self.isolating else "",
                    ),
                )
                yield conn

    @asynccontextmanager
    async def reader(
        self, tenant: str, *, snapshot: bool = False
    ) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """A connection inside a read transaction that sees only ``tenant``'s rows (row-level
        security), whether or not this view is :meth:`isolated`; rolled back on return.

        The isolation statement travels in one pipeline with the caller's first query, so an
        isolated read costs no extra round trip. ``snapshot`` makes every query of the
        transaction see the same snapshot (REPEATABLE READ).
        """
        if not tenant:
            raise ValueError("an isolated read needs a tenant")
        with storage_errors_mapped():
            async with self._pool.connection() as conn:
                if snapshot:
                    await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
                try:
                    async with conn.pipeline():
                        await conn.execute(ISOLATION_SQL, (tenant, tenant))
                        yield conn
                    await conn.rollback()
                finally:
                    if snapshot:
                        await conn.rollback()
                        await conn.set_isolation_level(None)

    async def ping(self) -> None:
        """One round trip to PostgreSQL: the readiness probe of the services that need it.

        Raises:
            Unavailable: PostgreSQL does not answer (down, restarting, refusing connections)
                or the pool has no connection to lend within its timeout.
        """
        with storage_errors_mapped():
            async with self._pool.connection() as conn:
                await conn.execute(PING_SQL)
                await conn.rollback()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        """A pooled connection for reads (autocommit off, rolled back on return)."""
        with storage_errors_mapped():
            async with self._pool.connection() as conn:
                yield conn
