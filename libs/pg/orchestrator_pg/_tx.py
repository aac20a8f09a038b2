"""Transaction helpers every store shares: the connection type, the named reads (one row,
every row, one page of a list), the one audit-entry writer, the one integrity-error mapper,
the audited single-row write and the settling of the DAG after jobs change state.

Stores are plain classes over :class:`~orchestrator_pg.Database` (STYLE rule 21: composed,
not inherited); what they have in common lives here as functions, so no store reaches into
another's private helpers.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from orchestrator_core import AlreadyExists, FieldViolation, InvalidArgument, NotFound, new_id
from orchestrator_core.redaction import redact_text
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._queries import query

Conn = psycopg.AsyncConnection[Row]
# Operator actions whose audit entry must say why (quota and backfill changes move capacity).
REASON_REQUIRED_ACTIONS = ("quota.", "backfill.")


def fields_params(fields: Any) -> dict[str, Any]:
    """The query parameters of a ``*Fields`` dataclass: one per field, dicts as JSONB and
    tuples as arrays (what the named queries of every store expect)."""
    params: dict[str, Any] = {}
    for f in dataclasses.fields(fields):
        value = getattr(fields, f.name)
        if isinstance(value, dict):
            value = Jsonb(value)
        elif isinstance(value, tuple):
            value = list(value)
        params[f.name] = value
    return params


def now_of(db: Database, ctx: TxContext) -> datetime:
    """The transaction's time: the context's (an injected clock upstream) or the db clock's."""
    return ctx.now or db.clock.now()


def reader(db: Database, params: dict[str, Any]) -> AbstractAsyncContextManager[Conn]:
    """An isolated read for the tenant the query names; a plain connection for the few
    platform reads without one (e.g. the firer's next due schedule)."""
    tenant = params.get("tenant")
    return db.reader(tenant) if tenant else db.connection()


async def fetch_one(
    db: Database, name: str, params: dict[str, Any], resource_type: str, resource_id: object
) -> Row:
    """The single row of a named read, or NotFound for ``resource_type``."""
    async with reader(db, params) as conn:
        cur = await conn.execute(query(name), params)
        row = await cur.fetchone()
    if row is None:
        raise NotFound(resource_type, str(resource_id))
    return row


async def fetch_all(db: Database, name: str, params: dict[str, Any]) -> list[Row]:
    """Every row of a named read."""
    async with reader(db, params) as conn:
        cur = await conn.execute(query(name), params)
        return await cur.fetchall()


async def fetch_page(
    db: Database,
    name: str,
    tenant: str,
    filters: Mapping[str, object],
    after: object,
    limit: int,
) -> list[Row]:
    """One page of a named list read: ``tenant``'s rows matching ``filters`` (None: any; a
    sequence is an array, an empty one any), after the cursor ``after``, at most ``limit``.

    ``after`` is None before the first page, else what ``orchestrator_core.paging`` decoded
    from the token: the last row's id (``%(after_id)s``), event seq (``%(after_seq)s``) or,
    for newest-first lists, its ``(time, id)`` (``%(after_at)s``, ``%(after_id)s``). Every
    list query takes ``%(tenant)s`` and ``%(limit)s``.
    """
    params: dict[str, Any] = {"tenant": tenant, "limit": limit}
    for key, value in filters.items():
        params[key] = (list(value) or None) if isinstance(value, list | tuple) else value
    params["after_at"], params["after_seq"], params["after_id"] = None, None, None
    if isinstance(after, tuple):
        params["after_at"], params["after_id"] = after
    elif isinstance(after, int):
        params["after_seq"] = after
    else:
        params["after_id"] = after
    return await fetch_all(db, name, params)


class _Store(Protocol):
    db: Database


def paged_read(
    name: str, *filters: str, cursor: str = "after_id"
) -> Callable[..., Awaitable[list[Row]]]:
    """A store's list method that is only its named query: called as
    ``(tenant, *, <each filter>=..., <cursor>=..., limit=...)`` (how
    ``orchestrator_core.paging.page`` calls it: ``cursor`` is the paging cursor's argument,
    ``after_id``, ``after_seq`` or ``after``), it returns :func:`fetch_page`'s rows.

    Raises:
        TypeError: a call that does not name exactly these filters, the cursor and limit.
    """
    expected = {*filters, cursor, "limit"}

    async def read(self: _Store, tenant: str, **given: Any) -> list[Row]:
        if set(given) != expected:
            raise TypeError(f"{name}() takes {sorted(expected)}, got {sorted(given)}")
        chosen = {key: given[key] for key in filters}
        return await fetch_page(self.db, name, tenant, chosen, given[cursor], given["limit"])

    read.__name__ = read.__qualname__ = name
    read.__doc__ = f"A page of the ``{name}`` query (filters: {', '.join(filters) or 'none'})."
    return read


async def audit_entry_write(
    conn: Conn, ctx: TxContext, action: str, target: str, now: datetime
) -> None:
    """Records an operator action (who, scopes, reason, ticket) in the caller's transaction;
    the entry is also an ``audit.<action>`` event, so it is chained like every other event.
    Reason and ticket are always redacted: operators paste credentials into them.

    Raises:
        InvalidArgument: A quota or backfill action without an operator reason (the
            transaction rolls back: nothing changes).
    """
    if action.startswith(REASON_REQUIRED_ACTIONS) and not ctx.reason.strip():
        raise InvalidArgument(
            f"{action} needs an operator reason (it is recorded in the audit trail)",
            [FieldViolation("operator.reason", "required for quota and backfill actions")],
        )
    await conn.execute(
        query("audit_entry_insert"),
        {
            "id": uuid.UUID(new_id(None)),
            "tenant": ctx.tenant,
            "actor_subject": ctx.actor_subject,
            "actor_scopes": list(ctx.actor_scopes),
            "action": action,
            "target": target,
            "reason": redact_text(ctx.reason),
            "ticket": redact_text(ctx.ticket),
            "now": now,
        },
    )


def tenant_not_found(tenant: str) -> NotFound:
    return NotFound(
        "tenant",
        tenant,
        f"tenant '{tenant}' is not registered; register it with "
        f"`stella orchestrator tenants add {tenant}`",
    )


def integrity_error(
    exc: pg_errors.IntegrityError, tenant: str, taken: AlreadyExists | None = None
) -> Exception:
    """The domain error for a constraint the database refused.

    A unique violation is ``taken`` (the store says what name or key is in use) when given;
    a missing tenant (``*_tenant_fkey``) is the caller's problem (NOT_FOUND); anything else
    is ours and stays the driver's error (INTERNAL).
    """
    if isinstance(exc, pg_errors.UniqueViolation) and taken is not None:
        return taken
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        constraint = exc.diag.constraint_name or ""
        if constraint.endswith("_tenant_fkey"):
            return tenant_not_found(tenant)
    return exc


@contextmanager
def integrity_mapped(tenant: str, taken: AlreadyExists | None = None) -> Iterator[None]:
    """Maps the integrity errors of the block with :func:`integrity_error`."""
    try:
        yield
    except pg_errors.IntegrityError as exc:
        mapped = integrity_error(exc, tenant, taken)
        if mapped is exc:
            raise
        raise mapped from None


async def write_audited(
    db: Database,
    ctx: TxContext,
    name: str,
    params: dict[str, Any],
    *,
    action: str,
    target: tuple[str, object],
    taken: AlreadyExists | None = None,
    before: Callable[[Conn], Awaitable[None]] | None = None,
) -> Row:
    """One single-row write (insert, update or delete ``RETURNING``) and its audit entry in
    one transaction: the shape of every plain operator write.

    Args:
        name: the named query; ``params["now"]`` is the audit entry's time.
        action: the audit action, e.g. ``quota.update``.
        target: ``(resource type, id)``; the audit target is ``<type>s/<id>``.
        taken: what a unique violation means (e.g. the name is in use).
        before: checks run first in the same transaction (e.g. the source is enabled).

    Raises:
        NotFound: the query returned no row (no such resource in the tenant).
    """
    resource_type, resource_id = target
    with integrity_mapped(ctx.tenant, taken):
        async with db.transaction(ctx) as conn:
            if before is not None:
                await before(conn)
            cur = await conn.execute(query(name), params)
            row = await cur.fetchone()
            if row is not None:
                await audit_entry_write(
                    conn, ctx, action, f"{resource_type}s/{resource_id}", params["now"]
                )
    if row is None:
        raise NotFound(resource_type, str(resource_id))
    return row


async def create_audited(
    db: Database,
    ctx: TxContext,
    resource_type: str,
    fields: Any,
    *,
    extra: dict[str, Any] | None = None,
    taken: AlreadyExists | None = None,
) -> Row:
    """Inserts one row of the tenant from its ``*Fields`` (a new id, the tenant, the
    transaction's time, plus ``extra``) with its audit entry: :func:`write_audited` with the
    ``<type>_create`` query and the ``<type>.create`` action, the shape of every create.

    Raises:
        AlreadyExists: ``taken``, on a unique violation.
    """
    params = fields_params(fields) | {
        "id": uuid.UUID(new_id(db.clock)),
        "tenant": ctx.tenant,
        "now": now_of(db, ctx),
    }
    return await write_audited(
        db,
        ctx,
        f"{resource_type}_create",
        params | (extra or {}),
        action=f"{resource_type}.create",
        target=(resource_type, params["id"]),
        taken=taken,
    )


async def delete_audited(
    db: Database,
    ctx: TxContext,
    resource_type: str,
    resource_id: object,
    *,
    before: Callable[[Conn], Awaitable[None]] | None = None,
) -> Row:
    """Deletes one row of the tenant with its audit entry (:func:`write_audited` with the
    ``<type>_delete`` query and the ``<type>.delete`` action, the shape of every delete).

    Raises:
        NotFound: no such resource in the tenant.
    """
    return await write_audited(
        db,
        ctx,
        f"{resource_type}_delete",
        {"tenant": ctx.tenant, "id": resource_id, "now": now_of(db, ctx)},
        action=f"{resource_type}.delete",
        target=(resource_type, resource_id),
        before=before,
    )


async def settle(
    conn: Conn,
    succeeded: Sequence[uuid.UUID],
    failed: Sequence[uuid.UUID],
    run_ids: Iterable[uuid.UUID | None],
    now: datetime,
    *,
    lock_runs: bool = True,
) -> None:
    """After jobs changed state: release children of the succeeded, cancel what is
    downstream of the dead/canceled, then re-derive the touched runs' states.

    ``lock_runs=False`` is for transitions that cannot finish a run (claims): they may only
    move a run from pending to running, which needs no serialisation.
    """
    runs = {rid for rid in run_ids if rid is not None}
    if succeeded:
        cur = await conn.execute(
            query("job_release_children"), {"ids": list(succeeded), "now": now}
        )
        runs.update(row["run_id"] for row in await cur.fetchall() if row["run_id"])
    if failed:
        cur = await conn.execute(query("job_cancel_descendants"), {"ids": list(failed), "now": now})
        runs.update(row["run_id"] for row in await cur.fetchall() if row["run_id"])
    if runs:
        ordered = sorted(runs)
        if lock_runs:
            await conn.execute(query("run_lock_many"), {"run_ids": ordered})
        await conn.execute(query("run_refresh_state"), {"run_ids": ordered, "now": now})
