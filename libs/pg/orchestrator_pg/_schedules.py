"""Cron schedules (storage, operator changes, the firing pass's reads and writes) and the
event-time watermarks they advance.

The cron arithmetic (next fire times, catch-up and overlap policies) is the scheduler
service's (:mod:`orchestrator_scheduler._firing`); this module only stores what it decides.
Every operator change is audited in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from orchestrator_core import AlreadyExists, NotFound
from orchestrator_pg._db import Row, TxContext
from orchestrator_pg._ledger import Conn, Ledger, _audit, _foreign_key_error
from orchestrator_pg._queries import query

SCHEDULE_MUTABLE_FIELDS = (
    "name",
    "cron",
    "source_id",
    "run_template",
    "catch_up",
    "catch_up_window",
    "overlap",
    "enabled",
)


@dataclass(frozen=True)
class ScheduleFields:
    """The writable fields of a schedule (validated by the caller)."""

    name: str = ""
    cron: str = ""
    source_id: uuid.UUID | None = None
    run_template: dict[str, Any] = field(default_factory=dict)
    catch_up: str = "one"
    catch_up_window: timedelta | None = None
    overlap: str = "skip"
    enabled: bool = True


class ScheduleLedger(Ledger):
    """The ledger with schedule storage."""

    async def schedule_create(
        self,
        ctx: TxContext,
        schedule_id: uuid.UUID,
        fields: ScheduleFields,
        next_fire_at: datetime | None,
    ) -> Row:
        now = self._now(ctx)
        params = _params(fields) | {
            "id": schedule_id,
            "tenant": ctx.tenant,
            "next_fire_at": next_fire_at,
            "now": now,
        }
        try:
            async with self.db.transaction(ctx) as conn:
                await self._check_sources(conn, ctx.tenant, [fields.source_id])
                cur = await conn.execute(query("schedule_insert"), params)
                row = await cur.fetchone()
                await _audit(conn, ctx, "schedule.create", f"schedules/{schedule_id}", now)
        except pg_errors.UniqueViolation:
            raise AlreadyExists(
                f"tenant '{ctx.tenant}' already has a schedule named '{fields.name}'",
                reason="SCHEDULE_EXISTS",
                metadata={"name": fields.name},
            ) from None
        except pg_errors.ForeignKeyViolation as exc:
            raise _foreign_key_error(exc, ctx.tenant) from None
        assert row is not None
        return row

    async def schedule_get(self, tenant: str, schedule_id: uuid.UUID) -> Row:
        return await self._one(
            "schedule_get", {"tenant": tenant, "id": schedule_id}, "schedule", schedule_id
        )

    async def schedule_list(
        self, tenant: str, *, enabled: bool | None, after_id: uuid.UUID | None, limit: int
    ) -> list[Row]:
        return await self._all(
            "schedule_list",
            {"tenant": tenant, "enabled": enabled, "after_id": after_id, "limit": limit},
        )

    async def schedule_update(
        self,
        ctx: TxContext,
        schedule_id: uuid.UUID,
        fields: ScheduleFields,
        mask: Sequence[str],
        next_fire_at: datetime | None,
    ) -> Row:
        """Changes the fields named in ``mask``; ``next_fire_at`` (when not None) replaces
        the stored one (a new cron, or a re-enabled schedule, starts from now)."""
        now = self._now(ctx)
        params = _params(fields) | {
            "tenant": ctx.tenant,
            "id": schedule_id,
            "mask": list(mask),
            "next_fire_at": next_fire_at,
            "now": now,
        }
        try:
            async with self.db.transaction(ctx) as conn:
                if "source_id" in mask:
                    await self._check_sources(conn, ctx.tenant, [fields.source_id])
                cur = await conn.execute(query("schedule_update"), params)
                row = await cur.fetchone()
                if row is not None:
                    await _audit(conn, ctx, "schedule.update", f"schedules/{schedule_id}", now)
        except pg_errors.UniqueViolation:
            raise AlreadyExists(
                f"tenant '{ctx.tenant}' already has a schedule named '{fields.name}'",
                reason="SCHEDULE_EXISTS",
                metadata={"name": fields.name},
            ) from None
        if row is None:
            raise NotFound("schedule", str(schedule_id))
        return row

    async def schedule_delete(self, ctx: TxContext, schedule_id: uuid.UUID) -> None:
        now = self._now(ctx)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("schedule_delete"), {"tenant": ctx.tenant, "id": schedule_id}
            )
            row = await cur.fetchone()
            if row is not None:
                await _audit(conn, ctx, "schedule.delete", f"schedules/{schedule_id}", now)
        if row is None:
            raise NotFound("schedule", str(schedule_id))

    # ------------------------------------------------------------ firing

    @asynccontextmanager
    async def due(self, now: datetime, limit: int) -> AsyncIterator[tuple[Conn, list[Row]]]:
        """The due schedules, locked (``FOR UPDATE SKIP LOCKED``) for one transaction: the
        firing pass creates their runs and advances them before it ends, so a second
        firer never handles the same schedule at once."""
        async with self.db.transaction(TxContext(tenant="", actor_subject="scheduler")) as conn:
            cur = await conn.execute(query("schedule_due"), {"now": now, "limit": limit})
            yield conn, await cur.fetchall()

    @staticmethod
    async def advance(
        conn: Conn,
        schedule_id: uuid.UUID,
        *,
        next_fire_at: datetime | None,
        last_fire_at: datetime | None,
        buffered_fire_at: datetime | None,
    ) -> None:
        await conn.execute(
            query("schedule_advance"),
            {
                "id": schedule_id,
                "next_fire_at": next_fire_at,
                "last_fire_at": last_fire_at,
                "buffered_fire_at": buffered_fire_at,
            },
        )

    @staticmethod
    async def has_open_run(conn: Conn, schedule_id: uuid.UUID) -> bool:
        cur = await conn.execute(query("schedule_open_run"), {"id": schedule_id})
        row = await cur.fetchone()
        return bool(row and row["open"])

    async def watermark_list(
        self,
        tenant: str,
        *,
        source_id: uuid.UUID | None,
        job_type: str | None,
        after: str | None,
        limit: int,
    ) -> list[Row]:
        """Watermarks (advanced by the ledger's ``jobs_watermarks`` trigger) in
        ``"<source id>|<job type>"`` order after ``after``."""
        return await self._all(
            "watermark_list",
            {
                "tenant": tenant,
                "source_id": source_id,
                "job_type": job_type,
                "after": after,
                "limit": limit,
            },
        )

    async def next_due(self) -> datetime | None:
        rows = await self._all("schedule_next_due", {})
        return rows[0]["next_fire_at"] if rows else None


def _params(fields: ScheduleFields) -> dict[str, Any]:
    return {
        "name": fields.name,
        "cron": fields.cron,
        "source_id": fields.source_id,
        "run_template": Jsonb(fields.run_template),
        "catch_up": fields.catch_up,
        "catch_up_window": fields.catch_up_window,
        "overlap": fields.overlap,
        "enabled": fields.enabled,
    }
