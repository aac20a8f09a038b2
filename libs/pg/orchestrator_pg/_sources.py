"""Sources (``orchestrator.sources``): the upstream feeds of a tenant, with their pause and
concurrency cap. Queries: ``queries/sources.sql``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from orchestrator_core import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PreconditionViolation,
)
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._queries import query
from orchestrator_pg._tx import (
    Conn,
    audit_entry_write,
    create_audited,
    delete_audited,
    fetch_one,
    fields_params,
    integrity_mapped,
    now_of,
    paged_read,
)


@dataclass(frozen=True)
class SourceFields:
    """The writable fields of a source."""

    name: str = ""
    source_type: str = ""
    host: str = ""
    base_url: str = ""
    enabled: bool = True
    paused: bool = False
    paused_reason: str = ""
    paused_ticket: str = ""
    job_types: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    max_active: int | None = None  # None: no cap


async def source_check_enabled_many(
    conn: Conn, tenant: str, source_ids: Iterable[uuid.UUID | None]
) -> None:
    """Refuses new work for sources that do not exist (NOT_FOUND) or are disabled
    (FAILED_PRECONDITION), in the caller's transaction; ``None`` ids are skipped."""
    wanted = sorted({sid for sid in source_ids if sid is not None})
    if not wanted:
        return
    cur = await conn.execute(query("source_get_many"), {"tenant": tenant, "ids": wanted})
    found = {row["id"]: row for row in await cur.fetchall()}
    for sid in wanted:
        if sid not in found:
            raise NotFound("source", str(sid))
        if not found[sid]["enabled"]:
            raise FailedPrecondition(
                f"source '{found[sid]['name']}' ({sid}) is disabled and accepts no new jobs; "
                "enable it (UpdateSource with enabled=true) first",
                reason="SOURCE_DISABLED",
                violations=[PreconditionViolation("SOURCE_ENABLED", f"sources/{sid}", "disabled")],
            )


class SourceStore:
    """Storage of sources (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        # Tenant APIs: every transaction is confined to its tenant by row-level security, and
        # reads go through Database.reader (the second wall behind each query's tenant filter).
        self.db = db.isolated()

    async def source_create(self, ctx: TxContext, fields: SourceFields) -> Row:
        return await create_audited(
            self.db, ctx, "source", fields, taken=_name_taken(ctx.tenant, fields.name)
        )

    async def source_get(self, tenant: str, source_id: uuid.UUID) -> Row:
        return await fetch_one(
            self.db, "source_get", {"tenant": tenant, "id": source_id}, "source", source_id
        )

    source_list = paged_read("source_list", "source_type", "enabled")

    async def source_update(
        self,
        ctx: TxContext,
        source_id: uuid.UUID,
        fields: SourceFields,
        mask: Sequence[str],
        *,
        expected_version: int = 0,
    ) -> Row:
        """Changes the fields named in ``mask``; with ``expected_version`` (optimistic
        concurrency) only if the source is still at that version, else ABORTED."""
        params = fields_params(fields) | {
            "tenant": ctx.tenant,
            "id": source_id,
            "mask": list(mask),
            "expected_version": expected_version,
            "now": now_of(self.db, ctx),
        }
        with integrity_mapped(ctx.tenant, _name_taken(ctx.tenant, fields.name)):
            async with self.db.transaction(ctx) as conn:
                cur = await conn.execute(query("source_update"), params)
                row = await cur.fetchone()
                if row is None and expected_version:
                    await _check_version(conn, ctx.tenant, source_id, expected_version)
                if row is not None:
                    await audit_entry_write(
                        conn, ctx, "source.update", f"sources/{source_id}", params["now"]
                    )
        if row is None:
            raise NotFound("source", str(source_id))
        return row

    async def source_delete(self, ctx: TxContext, source_id: uuid.UUID) -> Row:
        async def no_open_jobs(conn: Conn) -> None:
            cur = await conn.execute(
                query("source_count_open_jobs"), {"tenant": ctx.tenant, "id": source_id}
            )
            counted = await cur.fetchone()
            open_jobs = int(counted["open_jobs"]) if counted else 0
            if open_jobs:
                raise FailedPrecondition(
                    f"source {source_id} still has {open_jobs} open jobs; cancel them or "
                    "let them finish before deleting the source",
                    reason="SOURCE_HAS_OPEN_JOBS",
                    violations=[
                        PreconditionViolation(
                            "SOURCE_OPEN_JOBS", f"sources/{source_id}", f"{open_jobs} open jobs"
                        )
                    ],
                )

        return await delete_audited(self.db, ctx, "source", source_id, before=no_open_jobs)


async def _check_version(conn: Conn, tenant: str, source_id: uuid.UUID, expected: int) -> None:
    """ABORTED when the source exists at another version than the caller read."""
    cur = await conn.execute(query("source_version"), {"tenant": tenant, "id": source_id})
    current = await cur.fetchone()
    if current is not None:
        raise Aborted(
            f"source {source_id} is at version {current['version']}, not "
            f"{expected}: it changed since you read it; read it again "
            "and reapply your change",
            reason="VERSION_MISMATCH",
            metadata={"current_version": str(current["version"])},
        )


def _name_taken(tenant: str, name: str) -> AlreadyExists:
    return AlreadyExists(
        f"a source named '{name}' exists already in tenant '{tenant}'",
        reason="SOURCE_NAME_TAKEN",
        metadata={"name": name},
    )
