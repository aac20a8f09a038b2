"""Cron schedules (storage, operator changes, the firing pass's reads and writes) and the
event-time watermarks they advance. Queries: ``queries/schedules.sql``,
``queries/watermarks.sql``. The firing pass reads :class:`~orchestrator_core.ScheduleRecord`.

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

from orchestrator_core import AlreadyExists, ScheduleRecord
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._queries import query
from orchestrator_pg._sources import source_check_enabled_many
from orchestrator_pg._tx import (
    Conn,
    delete_audited,
    fetch_all,
    fetch_one,
    fields_params,
    now_of,
    paged_read,
    write_audited,
)

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


class ScheduleStore:
    """Storage of schedules and watermarks (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        # Tenant APIs: confined to their tenant by row-level security (see SourceStore);
        # the firing pass is a platform transaction (no tenant) and spans every tenant.
        self.db = db.isolated()

    async def schedule_create(
        self,
        ctx: TxContext,
        schedule_id: uuid.UUID,
        fields: ScheduleFields,
        next_fire_at: datetime | None,
    ) -> Row:
        return await self._write(ctx, "create", schedule_id, fields, next_fire_at, {})

    async def schedule_get(self, tenant: str, schedule_id: uuid.UUID) -> Row:
        return await fetch_one(
            self.db, "schedule_get", {"tenant": tenant, "id": schedule_id}, "schedule", schedule_id
        )

    schedule_list = paged_read("schedule_list", "enabled")

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
        return await self._write(
            ctx, "update", schedule_id, fields, next_fire_at, {"mask": list(mask)}
        )

    async def _write(
        self,
        ctx: TxContext,
        verb: str,
        schedule_id: uuid.UUID,
        fields: ScheduleFields,
        next_fire_at: datetime | None,
        extra: dict[str, Any],
    ) -> Row:
        """``schedule_create`` or ``schedule_update`` (``extra`` holds its mask), audited;
        the source it names, if it names a new one, must exist and be enabled."""
        params = fields_params(fields) | extra
        params |= {
            "id": schedule_id,
            "tenant": ctx.tenant,
            "next_fire_at": next_fire_at,
            "now": now_of(self.db, ctx),
        }
        named = "mask" not in extra or "source_id" in extra["mask"]
        sources = [fields.source_id] if named else []
        return await write_audited(
            self.db,
            ctx,
            f"schedule_{verb}",
            params,
            action=f"schedule.{verb}",
            target=("schedule", schedule_id),
            taken=_name_taken(ctx.tenant, fields.name),
            before=lambda conn: source_check_enabled_many(conn, ctx.tenant, sources),
        )

    async def schedule_delete(self, ctx: TxContext, schedule_id: uuid.UUID) -> None:
        await delete_audited(self.db, ctx, "schedule", schedule_id)

    # ------------------------------------------------------------ firing

    @asynccontextmanager
    async def schedule_due(
        self, now: datetime, limit: int
    ) -> AsyncIterator[tuple[Conn, list[ScheduleRecord]]]:
        """The due schedules, locked (``FOR UPDATE SKIP LOCKED``) for one transaction: the
        firing pass creates their runs and advances them before it ends, so a second
        firer never handles the same schedule at once."""
        async with self.db.transaction(TxContext(tenant="", actor_subject="scheduler")) as conn:
            cur = await conn.execute(query("schedule_due"), {"now": now, "limit": limit})
            yield conn, [ScheduleRecord.of(row) for row in await cur.fetchall()]

    @staticmethod
    async def schedule_advance(
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
    async def schedule_has_open_run(conn: Conn, schedule_id: uuid.UUID) -> bool:
        cur = await conn.execute(query("schedule_has_open_run"), {"id": schedule_id})
        row = await cur.fetchone()
        return bool(row and row["open"])

    async def schedule_next_due(self) -> datetime | None:
        rows = await fetch_all(self.db, "schedule_next_due", {})
        return rows[0]["next_fire_at"] if rows else None

    async def watermark_list(
        self,
        tenant: str,
        *,
        source_id: uuid.UUID | None,
        job_type: str | None,
        after: str | None,
        limit: int,
    ) -> list[Row]:
        """Watermarks (advanced by the ``jobs_watermarks`` trigger) in
        ``"<source id>|<job type>"`` order after ``after``."""
        return await fetch_all(
            self.db,
            "watermark_list",
            {
                "tenant": tenant,
                "source_id": source_id,
                "job_type": job_type,
                "after": after,
                "limit": limit,
            },
        )


def _name_taken(tenant: str, name: str) -> AlreadyExists:
    return AlreadyExists(
        f"tenant '{tenant}' already has a schedule named '{name}'",
        reason="SCHEDULE_EXISTS",
        metadata={"name": name},
    )
