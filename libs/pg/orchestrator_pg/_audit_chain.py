"""Storage of the audit service: the hash chain, its anchors, audit entries and the reads
behind bundle exports.

Chaining is platform work: it reads every tenant's events in seq order on the plain pool.
Everything a tenant asks for (entries, chain head, exports) reads through
:meth:`Database.reader`, confined to that tenant by row-level security.

Settling. Event seqs are taken when a row is inserted, but transactions commit in their own
order, so a reader can see seq 101 before seq 100 commits. :meth:`AuditLedger.settled_seq`
returns a seq below which nothing can appear any more: it notes the highest seq handed out,
then waits until every transaction that was writing events at that moment has ended (the
event horizon's mechanism, one copy). The chainer links events only up to there, in seq
order, and moves its cursor in the same transaction as the links, so a restart resumes
exactly where it stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator_core import NotFound
from orchestrator_pg._db import Database, Row
from orchestrator_pg._eventstream import event_seq_settled
from orchestrator_pg._queries import query
from orchestrator_pg._tx import Conn, paged_read


@dataclass(frozen=True)
class ChainLink:
    """One event appended to its tenant's chain."""

    tenant: str
    seq: int
    event_id: uuid.UUID
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ExportScope:
    """What a bundle covers: exactly one of a run, a source or a time window [start, end)."""

    run_id: uuid.UUID | None = None
    source_id: uuid.UUID | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class ExportData:
    """The rows of one bundle, in their bundle order."""

    jobs: list[Row]
    events: list[Row]
    throttles: list[Row]
    anchor: Row | None


class AuditLedger:
    """Storage operations of the audit service (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---------------------------------------------------------------- chaining (platform)

    async def cursor(self) -> int:
        """The highest seq settled into the chain so far (0 at first)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(query("audit_cursor_get"))
            row = await cur.fetchone()
            return int(row["seq"]) if row else 0

    async def heads(self) -> dict[str, str]:
        """``{tenant: hash}`` of every chain's newest link."""
        async with self.db.connection() as conn:
            cur = await conn.execute(query("audit_chain_heads"))
            return {row["tenant"]: row["hash"] for row in await cur.fetchall()}

    async def seq_allocated(self) -> int:
        """The highest event seq handed out so far."""
        async with self.db.connection() as conn:
            cur = await conn.execute(query("audit_seq_allocated"))
            row = await cur.fetchone()
            return int(row["seq"]) if row else 0

    async def settled_seq(self) -> int:
        """A seq at or below which every event is committed or will never exist: the
        highest handed out, once the transactions writing events then have ended (waits as
        long as it takes; the one mechanism of orchestrator_pg._eventstream)."""
        async with self.db.connection() as conn:
            return await event_seq_settled(conn, give_up_s=None)

    async def events_settled(self, after: int, upto: int, limit: int) -> list[Row]:
        """Events with ``after < seq <= upto`` of every tenant, in seq order."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                query("audit_events_settled"), {"after": after, "upto": upto, "limit": limit}
            )
            return await cur.fetchall()

    async def append(
        self, links: Sequence[ChainLink], cursor: int, now: datetime, *, anchor: bool
    ) -> None:
        """Writes links, the new cursor and (``anchor``) each touched tenant's newest link as
        an anchor, in one transaction."""
        async with self.db.connection() as conn, conn.transaction():
            if links:
                await conn.execute(
                    query("audit_chain_insert_many"),
                    {
                        "tenants": [link.tenant for link in links],
                        "seqs": [link.seq for link in links],
                        "event_ids": [link.event_id for link in links],
                        "prev_hashes": [link.prev_hash for link in links],
                        "hashes": [link.hash for link in links],
                        "now": now,
                    },
                )
                if anchor:
                    newest: dict[str, ChainLink] = {}
                    for link in links:
                        newest[link.tenant] = link
                    await conn.execute(
                        query("audit_anchor_insert_many"),
                        {
                            "tenants": list(newest),
                            "seqs": [link.seq for link in newest.values()],
                            "hashes": [link.hash for link in newest.values()],
                            "now": now,
                        },
                    )
            await conn.execute(query("audit_cursor_set"), {"seq": cursor, "now": now})

    # ---------------------------------------------------------------- tenant reads

    async def chain_head(self, tenant: str) -> Row | None:
        """The tenant's newest anchored link, or None before its first."""
        async with self.db.reader(tenant) as conn:
            cur = await conn.execute(query("audit_chain_head"), {"tenant": tenant})
            return await cur.fetchone()

    # A page of the tenant's audit entries in seq order.
    entry_list = paged_read(
        "audit_entry_list", "actor", "action", "start", "end", cursor="after_seq"
    )

    async def export_data(self, tenant: str, scope: ExportScope) -> ExportData:
        """The jobs, chained events and throttles of ``scope``, and the anchor at or before
        the last event, read in one snapshot.

        Raises:
            NotFound: The run or source is not the tenant's.
        """
        async with self.db.reader(tenant, snapshot=True) as conn:
            params: dict[str, Any] = {"tenant": tenant}
            if scope.run_id is not None:
                kind, params["run_id"] = "run", scope.run_id
                await _scope_check(conn, tenant, kind, scope.run_id)
                cur = await conn.execute(query("audit_run_job_targets"), params)
                params["targets"] = [f"runs/{scope.run_id}"] + [
                    r["target"] for r in await cur.fetchall()
                ]
            elif scope.source_id is not None:
                kind, params["source_id"] = "source", scope.source_id
                await _scope_check(conn, tenant, kind, scope.source_id)
                params["targets"] = [f"sources/{scope.source_id}"]
            else:
                kind = "window"
                params["start"], params["end"] = scope.start, scope.end
            cur = await conn.execute(query(f"audit_export_jobs_{kind}"), params)
            jobs = await cur.fetchall()
            cur = await conn.execute(query(f"audit_export_events_{kind}"), params)
            events = await cur.fetchall()
            cur = await conn.execute(query(f"audit_export_throttles_{kind}"), params)
            throttles = await cur.fetchall()
            anchor = None
            if events:
                cur = await conn.execute(
                    query("audit_anchor_at_or_before"),
                    {"tenant": tenant, "seq": events[-1]["seq"]},
                )
                anchor = await cur.fetchone()
        return ExportData(jobs=jobs, events=events, throttles=throttles, anchor=anchor)


async def _scope_check(conn: Conn, tenant: str, kind: str, scope_id: uuid.UUID) -> None:
    """NotFound unless the export's run or source (``kind``) is the tenant's."""
    cur = await conn.execute(
        query(f"audit_scope_{kind}_exists"), {"tenant": tenant, "id": scope_id}
    )
    if await cur.fetchone() is None:
        raise NotFound(kind, str(scope_id))
