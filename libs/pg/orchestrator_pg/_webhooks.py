"""Webhooks (``orchestrator.webhooks``, ``webhook_deliveries``, ``webhook_attempts``,
``webhook_cursor``): per-tenant subscriptions, one delivery per {subscription, event}, one
row per attempt. Queries: ``queries/webhooks.sql``; the rules:
``orchestrator_core.webhooks``; the dispatcher: ``orchestrator_scheduler/_webhooks.py``.

Operator writes (create, update, delete, rotate, redeliver) are audited in their transaction
(``webhook.*`` actions). The dispatcher's fan-out is one transaction that starts by locking
the cursor row (as the incident pass): a deposed leader mid-pass and the new leader
serialise on it and nothing is inserted twice (deliveries are unique per {subscription,
event} anyway). Attempts are claimed and committed before they are sent, and their outcome
is written fenced on the attempt number (see the contract atop the query file).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from orchestrator_core import new_id
from orchestrator_core.webhooks import (
    DisablePolicy,
    Outcome,
    WebhookAttempt,
    WebhookEvent,
    WebhookSubscription,
    body_bytes,
)
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._queries import query
from orchestrator_pg._tx import (
    Conn,
    delete_audited,
    fetch_all,
    fetch_one,
    fetch_page,
    now_of,
    write_audited,
)

__all__ = ["WebhookFields", "WebhookStore"]

# Fields of a subscription a reader sees: never the secrets (shown once, by create/rotate).
_SECRET_COLUMNS = ("secret", "previous_secret")
_EVENT_FIELDS = (
    "correlation_id",
    "project",
    "actor_subject",
    "job_id",
    "job_type",
    "run_id",
    "source_id",
    "from_state",
    "to_state",
    "reason",
    "attempt",
    "data",
)


@dataclass(frozen=True)
class WebhookFields:
    """A subscription's settable fields; None leaves one unchanged on update."""

    url: str | None = None
    event_types: tuple[str, ...] | None = None
    source_id: uuid.UUID | None = None
    job_type: str | None = None
    description: str | None = None
    enabled: bool | None = None
    clear_source: bool = False
    clear_job_type: bool = False


def public(row: Row) -> Row:
    """A subscription row without its secrets (and with ``rotating``: a previous secret is
    still valid)."""
    out = {k: v for k, v in row.items() if k not in _SECRET_COLUMNS}
    out["rotating"] = row.get("previous_secret") is not None
    return out


class WebhookStore:
    """Storage of webhooks (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        # Tenant APIs are confined to their tenant by row-level security; the dispatcher's
        # transactions are platform ones (no tenant), as the incident pass's.
        self.db = db.isolated()

    # ------------------------------------------------------------------ operator API

    async def webhook_create(self, ctx: TxContext, fields: WebhookFields, secret: str) -> Row:
        """A new subscription, audited (``webhook.create``). The returned row carries the
        secret: the only time it is shown."""
        webhook_id = uuid.UUID(new_id(self.db.clock))
        params: dict[str, Any] = {
            "id": webhook_id,
            "tenant": ctx.tenant,
            "url": fields.url,
            "event_types": list(fields.event_types or ()),
            "source_id": fields.source_id,
            "job_type": fields.job_type,
            "description": fields.description or "",
            "enabled": True if fields.enabled is None else fields.enabled,
            "secret": secret,
            "actor": ctx.actor_subject,
            "now": now_of(self.db, ctx),
        }
        return await self._write_secret(ctx, "webhook_insert", params, "webhook.create")

    async def _write_secret(
        self, ctx: TxContext, name: str, params: dict[str, Any], action: str
    ) -> Row:
        """A write that sets a subscription's secret, with its audit entry: the row as a
        reader sees it, plus the secret (the only time it is shown)."""
        row = await write_audited(
            self.db, ctx, name, params, action=action, target=("webhook", params["id"])
        )
        return {**public(row), "secret": params["secret"]}

    async def webhook_list(
        self, tenant: str, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Row]:
        rows = await fetch_page(self.db, "webhook_list", tenant, {}, after, limit)
        return [public(r) for r in rows]

    async def webhook_get(self, tenant: str, webhook_id: uuid.UUID) -> Row:
        """Raises: NotFound: no such subscription in the tenant."""
        row = await fetch_one(
            self.db, "webhook_get", {"tenant": tenant, "id": webhook_id}, "webhook", webhook_id
        )
        return public(row)

    async def webhook_update(
        self, ctx: TxContext, webhook_id: uuid.UUID, fields: WebhookFields
    ) -> Row:
        """Changes the given fields, audited (``webhook.update``); enabling a disabled
        subscription resets its failure streak.

        Raises:
            NotFound: no such subscription in the tenant.
        """
        params: dict[str, Any] = {
            "tenant": ctx.tenant,
            "id": webhook_id,
            "url": fields.url,
            "event_types": list(fields.event_types) if fields.event_types is not None else None,
            "source_id": fields.source_id,
            "job_type": fields.job_type,
            "description": fields.description,
            "enabled": fields.enabled,
            "clear_source": fields.clear_source,
            "clear_job_type": fields.clear_job_type,
            "now": now_of(self.db, ctx),
        }
        row = await write_audited(
            self.db,
            ctx,
            "webhook_update",
            params,
            action="webhook.update",
            target=("webhook", webhook_id),
        )
        return public(row)

    async def webhook_delete(self, ctx: TxContext, webhook_id: uuid.UUID) -> None:
        """Deletes a subscription with its deliveries, audited (``webhook.delete``).

        Raises:
            NotFound: no such subscription in the tenant.
        """
        await delete_audited(self.db, ctx, "webhook", webhook_id)

    async def webhook_rotate_secret(
        self, ctx: TxContext, webhook_id: uuid.UUID, secret: str, grace: timedelta
    ) -> Row:
        """Makes ``secret`` the signing secret; the old one keeps signing for ``grace`` (two
        signatures per delivery meanwhile). Audited (``webhook.rotate_secret``); the returned
        row carries the new secret (shown once).

        Raises:
            NotFound: no such subscription in the tenant.
        """
        now = now_of(self.db, ctx)
        params = {
            "tenant": ctx.tenant,
            "id": webhook_id,
            "secret": secret,
            "previous_expires_at": now + grace,
            "now": now,
        }
        return await self._write_secret(
            ctx, "webhook_rotate_secret", params, "webhook.rotate_secret"
        )

    async def webhook_delivery_list(
        self,
        tenant: str,
        webhook_id: uuid.UUID,
        *,
        state: str | None = None,
        after_seq: int | None = None,
        limit: int,
    ) -> list[Row]:
        """A subscription's deliveries (the log), newest event first."""
        filters = {"webhook_id": webhook_id, "state": state}
        return await fetch_page(self.db, "webhook_delivery_list", tenant, filters, after_seq, limit)

    async def webhook_delivery_get(self, tenant: str, delivery_id: uuid.UUID) -> Row:
        """One delivery with its payload and its attempts.

        Raises:
            NotFound: no such delivery in the tenant.
        """
        row = await fetch_one(
            self.db,
            "webhook_delivery_get",
            {"tenant": tenant, "id": delivery_id},
            "webhook_delivery",
            delivery_id,
        )
        attempts = await fetch_all(
            self.db, "webhook_attempt_list", {"tenant": tenant, "delivery_id": delivery_id}
        )
        return {**row, "attempts": attempts}

    async def webhook_redeliver(self, ctx: TxContext, delivery_id: uuid.UUID) -> Row:
        """Makes a delivery due now as its next attempt (whatever its state), audited
        (``webhook.redeliver``).

        Raises:
            NotFound: no such delivery in the tenant.
        """
        params = {"tenant": ctx.tenant, "id": delivery_id, "now": now_of(self.db, ctx)}
        return await write_audited(
            self.db,
            ctx,
            "webhook_redeliver",
            params,
            action="webhook.redeliver",
            target=("webhook_delivery", delivery_id),
        )

    # ------------------------------------------------------------------ dispatcher

    @asynccontextmanager
    async def webhook_fanout(self, now: datetime, upto: int) -> AsyncIterator[tuple[Conn, int]]:
        """The fan-out's transaction and its cursor, locked until the block ends; the
        deliveries it inserts commit together with the new cursor. Before the first pass
        (nothing stored) the cursor starts just before the first event that occurred since
        the oldest enabled subscription was created, or at ``upto`` (the horizon) without
        one."""
        ctx = TxContext(tenant="", actor_subject="scheduler", now=now)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(query("webhook_cursor_lock"))
            row = await cur.fetchone()
            if row is None:
                cur = await conn.execute(query("webhook_cursor_start"), {"upto": upto})
                row = await cur.fetchone()
            assert row is not None  # the start query always answers one row
            yield conn, int(row["seq"])

    @staticmethod
    async def webhook_events_after(
        conn: Conn, after: int, upto: int, limit: int
    ) -> list[WebhookEvent]:
        """Events after < seq <= upto of tenants with an enabled subscription, seq order."""
        cur = await conn.execute(
            query("webhook_events_after"), {"after": after, "upto": upto, "limit": limit}
        )
        return [
            WebhookEvent(
                seq=int(r["seq"]),
                event_id=r["event_id"],
                tenant=r["tenant"],
                type=r["type"],
                occurred_at=r["occurred_at"],
                fields={k: r[k] for k in _EVENT_FIELDS},
            )
            for r in await cur.fetchall()
        ]

    @staticmethod
    async def webhook_enabled_of_tenants(
        conn: Conn, tenants: Sequence[str]
    ) -> list[WebhookSubscription]:
        cur = await conn.execute(query("webhook_enabled_of_tenants"), {"tenants": list(tenants)})
        return [
            WebhookSubscription(
                id=r["id"],
                tenant=r["tenant"],
                event_types=tuple(r["event_types"]),
                source_id=r["source_id"],
                job_type=r["job_type"],
                created_at=r["created_at"],
            )
            for r in await cur.fetchall()
        ]

    async def webhook_delivery_insert_many(
        self,
        conn: Conn,
        pairs: Sequence[tuple[WebhookSubscription, WebhookEvent, dict[str, Any]]],
        now: datetime,
    ) -> None:
        """One pending delivery per (subscription, event, body); repeats insert nothing."""
        if not pairs:
            return
        await conn.execute(
            query("webhook_delivery_insert_many"),
            {
                "ids": [uuid.UUID(new_id(self.db.clock)) for _ in pairs],
                "tenants": [e.tenant for _, e, _ in pairs],
                "webhook_ids": [s.id for s, _, _ in pairs],
                "event_seqs": [e.seq for _, e, _ in pairs],
                "event_ids": [e.event_id for _, e, _ in pairs],
                "event_types": [e.type for _, e, _ in pairs],
                "payloads": [Jsonb(b) for _, _, b in pairs],
                "now": now,
            },
        )

    @staticmethod
    async def webhook_cursor_set(conn: Conn, seq: int, now: datetime) -> None:
        await conn.execute(query("webhook_cursor_set"), {"seq": seq, "now": now})

    async def webhook_attempt_claim(
        self, now: datetime, limit: int, inflight_s: float
    ) -> list[WebhookAttempt]:
        """Claims the next attempt of up to ``limit`` due deliveries (committed on return:
        each attempt number is handed out once)."""
        ctx = TxContext(tenant="", actor_subject="scheduler", now=now)
        async with self.db.transaction(ctx) as conn:
            cur = await conn.execute(
                query("webhook_attempt_claim"),
                {"now": now, "limit": limit, "inflight_s": inflight_s},
            )
            rows = await cur.fetchall()
        return [
            WebhookAttempt(
                delivery_id=r["delivery_id"],
                webhook_id=r["webhook_id"],
                tenant=r["tenant"],
                attempt=int(r["attempt"]),
                url=r["url"],
                secrets=tuple(s for s in (r["secret"], r["previous_secret"]) if s),
                body=body_bytes(r["payload"]),
            )
            for r in rows
        ]

    async def webhook_attempt_finish(
        self,
        attempt: WebhookAttempt,
        *,
        outcome: Outcome,
        status_code: int | None,
        latency_ms: int,
        error: str,
        next_attempt_at: datetime | None,
        now: datetime,
        disable: DisablePolicy,
    ) -> tuple[bool, bool]:
        """Records an attempt's outcome on its delivery (fenced on the attempt number), its
        attempt row and its subscription's failure streak, in one transaction.

        Returns:
            ``(recorded, disabled_now)``: False when the attempt was stale (nothing changed);
            True when this failure disabled the subscription.
        """
        params: dict[str, Any] = {
            "delivery_id": attempt.delivery_id,
            "attempt": attempt.attempt,
            "outcome": outcome.value,
            "status_code": status_code,
            "latency_ms": latency_ms,
            "error": error,
            "next_attempt_at": next_attempt_at,
            "now": now,
        }
        ctx = TxContext(tenant="", actor_subject="scheduler", now=now)
        async with self.db.transaction(ctx) as conn:
            await conn.execute(query("webhook_attempt_record"), params)
            cur = await conn.execute(query("webhook_attempt_finish"), params)
            if await cur.fetchone() is None:
                return False, False
            await conn.execute(query("webhook_streak_lock"), {"webhook_id": attempt.webhook_id})
            cur = await conn.execute(
                query("webhook_streak_update"),
                {
                    "webhook_id": attempt.webhook_id,
                    "succeeded": outcome is Outcome.SUCCEEDED,
                    "disable_streak": disable.streak,
                    "disable_after_s": disable.after.total_seconds(),
                    "now": now,
                },
            )
            row = await cur.fetchone()
        return True, bool(row and row["disabled_now"])
