"""Incidents (``orchestrator.incidents``): failure clusters that crossed a threshold, newest
first. Queries: ``queries/incidents.sql``; the rules: ``orchestrator_core.incidents``.

Written by the scheduler's incident pass only (leader of ``LeaderLoop.INCIDENTS``), which
reads failures from the event history after its cursor. The pass is one transaction that
starts by locking the cursor row (:meth:`IncidentStore.incident_pass`): a pass that raced
another (a leader deposed mid-pass) waits, then reads the cursor the winner wrote, so no
failure is counted twice even without leadership. The table's triggers turn every insert
and update into ``incident.*`` events in that transaction (``migrations/0010_incidents.sql``).
Operators read incidents and acknowledge them (audited, with who and why).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from orchestrator_core import FailedPrecondition, NotFound
from orchestrator_core.incidents import (
    FAILURE_EVENT_TYPES,
    IGNORED_ERROR_CLASSES,
    ClusterKey,
    FailureRecord,
    IncidentPolicy,
    IncidentRecord,
)
from orchestrator_core.redaction import redact_text
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._queries import query
from orchestrator_pg._tx import Conn, fetch_all, fetch_one, now_of, paged_read, write_audited

TIMELINE_LIMIT = 500
# Series the open-incidents gauge exports at most (largest first): the cardinality bound.
MAX_SERIES = 1000


def _key(row: Row) -> ClusterKey:
    return ClusterKey(row["tenant"], row["job_type"], row["source_id"], row["error_class"])


def _record(row: Row) -> IncidentRecord:
    return IncidentRecord(
        id=row["id"],
        key=_key(row),
        failure_count=int(row["failure_count"]),
        sample_job_ids=list(row["sample_job_ids"]),
        first_seen_at=row["first_seen_at"],
        last_seen_at=row["last_seen_at"],
        resolved_at=row["resolved_at"],
    )


def _samples(incident: IncidentRecord) -> str:
    return ",".join(str(j) for j in incident.sample_job_ids)


class IncidentStore:
    """Storage of incidents (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        # Tenant APIs: confined to their tenant by row-level security (see SourceStore); the
        # pass is a platform transaction (no tenant), as the schedule firer's.
        self.db = db.isolated()

    # ------------------------------------------------------------------ operator reads

    incident_list = paged_read("incident_list", "state", cursor="after")

    async def incident_get(self, tenant: str, incident_id: uuid.UUID) -> Row:
        """Raises: NotFound: no such incident in the tenant."""
        return await fetch_one(
            self.db, "incident_get", {"tenant": tenant, "id": incident_id}, "incident", incident_id
        )

    async def incident_timeline(self, tenant: str, incident_id: uuid.UUID) -> list[Row]:
        """The incident's ``incident.*`` events in seq order (at most TIMELINE_LIMIT)."""
        return await fetch_all(
            self.db,
            "incident_timeline",
            {"tenant": tenant, "id": incident_id, "limit": TIMELINE_LIMIT},
        )

    async def incident_acknowledge(self, ctx: TxContext, incident_id: uuid.UUID) -> Row:
        """Records that an operator saw the incident (who, why), audited
        (``incident.acknowledge``) in the same transaction; the incident keeps its state.

        Raises:
            NotFound: no such incident in the tenant.
            FailedPrecondition: it was acknowledged already (by whom is in the metadata).
        """
        now = now_of(self.db, ctx)
        params = {
            "tenant": ctx.tenant,
            "id": incident_id,
            "actor": ctx.actor_subject,
            "reason": redact_text(ctx.reason),
            "now": now,
        }
        try:
            return await write_audited(
                self.db,
                ctx,
                "incident_acknowledge",
                params,
                action="incident.acknowledge",
                target=("incident", incident_id),
            )
        except NotFound:
            row = await self.incident_get(ctx.tenant, incident_id)  # NotFound when absent
            raise FailedPrecondition(
                f"incident {incident_id} was acknowledged by {row['acknowledged_by']} at "
                f"{row['acknowledged_at'].isoformat()}",
                reason="INCIDENT_ALREADY_ACKNOWLEDGED",
                metadata={"acknowledged_by": row["acknowledged_by"]},
            ) from None

    # ------------------------------------------------------------------ platform

    async def incident_open_counts(
        self, *, max_series: int = MAX_SERIES
    ) -> dict[tuple[str, str], int]:
        """Open incidents by (tenant, error class), every tenant (the metric)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(query("incident_open_counts"), {"max_series": max_series})
            return {(r["tenant"], r["error_class"]): int(r["n"]) for r in await cur.fetchall()}

    async def incident_policy_upsert(
        self, tenant: str, threshold: int | None, window_s: int | None, quiet_s: int | None
    ) -> Row:
        """Sets a tenant's overrides (None: the deployment default)."""
        params = {
            "tenant": tenant,
            "failure_threshold": threshold,
            "window_s": window_s,
            "quiet_s": quiet_s,
            "now": self.db.clock.now(),
        }
        async with self.db.transaction(TxContext(tenant=tenant)) as conn:
            cur = await conn.execute(query("incident_policy_upsert"), params)
            row = await cur.fetchone()
        assert row is not None
        return row

    async def incident_policy_list(self) -> list[Row]:
        async with self.db.connection() as conn:
            cur = await conn.execute(query("incident_policy_list"))
            return await cur.fetchall()

    @asynccontextmanager
    async def incident_pass(self, now: datetime) -> AsyncIterator[tuple[Conn, int | None]]:
        """The pass's transaction and its cursor (None before the first pass), locked until
        the block ends; the block's writes commit together with the new cursor."""
        ctx = TxContext(tenant="", actor_subject="scheduler", now=now)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(query("incident_cursor_lock"))
            row = await cur.fetchone()
            yield conn, (int(row["seq"]) if row else None)

    @staticmethod
    async def incident_failures_after(
        conn: Conn, after: int, upto: int, limit: int
    ) -> list[FailureRecord]:
        cur = await conn.execute(
            query("incident_failures_after"),
            {
                "after": after,
                "upto": upto,
                "limit": limit,
                "types": list(FAILURE_EVENT_TYPES),
                "ignored": list(IGNORED_ERROR_CLASSES),
            },
        )
        return [
            FailureRecord(int(r["seq"]), _key(r), r["job_id"], r["occurred_at"])
            for r in await cur.fetchall()
        ]

    @staticmethod
    async def incident_state_of_tenants(
        conn: Conn, tenants: Sequence[str]
    ) -> tuple[
        dict[ClusterKey, IncidentRecord],
        dict[ClusterKey, list[FailureRecord]],
        dict[str, tuple[int | None, int | None, int | None]],
    ]:
        """The open incidents, the windows and the policy overrides of ``tenants``."""
        params = {"tenants": list(tenants)}
        cur = await conn.execute(query("incident_open_of_tenants"), params)
        incidents = {(r := _record(row)).key: r for row in await cur.fetchall()}
        cur = await conn.execute(query("incident_windows_of_tenants"), params)
        windows: dict[ClusterKey, list[FailureRecord]] = {}
        for row in await cur.fetchall():
            windows.setdefault(_key(row), []).append(
                FailureRecord(0, _key(row), row["job_id"], row["failed_at"])
            )
        cur = await conn.execute(query("incident_policies_of_tenants"), params)
        policies = {
            r["tenant"]: (r["failure_threshold"], r["window_s"], r["quiet_s"])
            for r in await cur.fetchall()
        }
        return incidents, windows, policies

    @staticmethod
    async def incident_write(
        conn: Conn,
        *,
        tenants: Sequence[str],
        opened: Sequence[IncidentRecord],
        changed: Sequence[IncidentRecord],
        windows: Mapping[ClusterKey, list[FailureRecord]],
    ) -> None:
        """Writes what a fold decided: stored incidents first (one may resolve before its
        cluster opens the next), then new ones, then the windows of ``tenants`` (replaced
        whole: ``windows`` holds every cluster of those tenants that keeps failures)."""
        if changed:
            await conn.execute(
                query("incident_update_many"),
                {
                    "ids": [i.id for i in changed],
                    "failure_counts": [i.failure_count for i in changed],
                    "samples": [_samples(i) for i in changed],
                    "last_seen_ats": [i.last_seen_at for i in changed],
                    "resolved_ats": [i.resolved_at for i in changed],
                },
            )
        if opened:
            await conn.execute(
                query("incident_insert_many"),
                {
                    "ids": [i.id for i in opened],
                    "tenants": [i.key.tenant for i in opened],
                    "error_classes": [i.key.error_class for i in opened],
                    "source_ids": [i.key.source_id for i in opened],
                    "job_types": [i.key.job_type for i in opened],
                    "failure_counts": [i.failure_count for i in opened],
                    "samples": [_samples(i) for i in opened],
                    "first_seen_ats": [i.first_seen_at for i in opened],
                    "last_seen_ats": [i.last_seen_at for i in opened],
                    "resolved_ats": [i.resolved_at for i in opened],
                },
            )
        if tenants:
            await conn.execute(query("incident_windows_delete_tenants"), {"tenants": list(tenants)})
            kept: list[FailureRecord] = [f for items in windows.values() for f in items]
            if kept:
                await conn.execute(
                    query("incident_windows_insert_many"),
                    {
                        "tenants": [f.key.tenant for f in kept],
                        "job_types": [f.key.job_type for f in kept],
                        "source_ids": [f.key.source_id for f in kept],
                        "error_classes": [f.key.error_class for f in kept],
                        "job_ids": [f.job_id for f in kept],
                        "failed_ats": [f.at for f in kept],
                    },
                )

    @staticmethod
    async def incident_resolve_quiet(conn: Conn, now: datetime, default: IncidentPolicy) -> int:
        """Resolves the open incidents past their quiet period and forgets window failures
        no window can use any more; returns how many incidents resolved."""
        cur = await conn.execute(
            query("incident_resolve_quiet"),
            {"now": now, "default_quiet_s": default.quiet.total_seconds()},
        )
        resolved = len(await cur.fetchall())
        await conn.execute(
            query("incident_windows_prune"),
            {"now": now, "default_window_s": default.window.total_seconds()},
        )
        return resolved

    @staticmethod
    async def incident_cursor_set(conn: Conn, seq: int, now: datetime) -> None:
        await conn.execute(query("incident_cursor_set"), {"seq": seq, "now": now})


def touched_tenants(failures: Iterable[FailureRecord]) -> list[str]:
    """The tenants of a batch, sorted (the pass reads and rewrites their state)."""
    return sorted({f.key.tenant for f in failures})
