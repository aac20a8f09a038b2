"""``stella orchestrator migrate`` and ``stella orchestrator tenants …`` (database admin)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from orchestrator_core import InvalidArgument, validate_tenant_id
from orchestrator_pg._db import Database
from orchestrator_pg._incidents import IncidentStore
from orchestrator_pg._migrate import MigrationError, load_migrations, migrate
from orchestrator_pg._tenants import TenantStore

DEFAULT_DATABASE_URL = "postgresql://orchestrator:orchestrator@127.0.0.1:5432/orchestrator"


def _database_url(args: argparse.Namespace) -> str:
    return str(args.database_url or os.environ.get("ORCH_DATABASE_URL") or DEFAULT_DATABASE_URL)


def _add_db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL (default: $ORCH_DATABASE_URL, else the local dev database)",
    )


def _migrate(args: argparse.Namespace) -> int:
    try:
        applied = asyncio.run(migrate(_database_url(args)))
    except (MigrationError, psycopg.Error) as exc:
        print(f"error: migration failed: {exc}", file=sys.stderr)
        return 1
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print(f"up to date ({len(load_migrations())} migrations)")
    return 0


class _Failed(Exception):
    """A command's own refusal: its message and exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _admin(args: argparse.Namespace, work: Callable[[Database], Awaitable[Any]]) -> Any:
    """Runs ``work`` on a one-connection pool; bad input exits 2, a database error 1 (each
    with one line on stderr, raised as :class:`_Failed`)."""

    async def run() -> Any:
        async with Database(_database_url(args), min_size=1, max_size=1) as db:
            return await work(db)

    try:
        return asyncio.run(run())
    except InvalidArgument as exc:
        raise _Failed(str(exc), 2) from exc
    except psycopg.Error as exc:
        raise _Failed(str(exc).rstrip(), 1) from exc


def _reporting(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except _Failed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.code
        except InvalidArgument as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


@_reporting
def _tenants_add(args: argparse.Namespace) -> int:
    tenant = validate_tenant_id(args.tenant, "tenant")
    row = _admin(args, lambda db: TenantStore(db).tenant_upsert(tenant, args.display_name))
    print(f"tenant {row['id']} registered")
    return 0


@_reporting
def _tenants_list(args: argparse.Namespace) -> int:
    rows = _admin(args, lambda db: TenantStore(db).tenant_list())
    width = max([len("TENANT"), *(len(r["id"]) for r in rows)])
    print(f"{'TENANT':<{width}}  WEIGHT  CREATED (UTC)         DISPLAY NAME")
    for r in rows:
        created = r["created_at"].strftime("%Y-%m-%d %H:%M:%S")
        print(f"{r['id']:<{width}}  {r['weight']:>6}  {created:<20}  {r['display_name']}")
    return 0


@_reporting
def _tenants_weight(args: argparse.Namespace) -> int:
    tenant = validate_tenant_id(args.tenant, "tenant")
    row = _admin(args, lambda db: TenantStore(db).tenant_weight_set(tenant, args.weight))
    if row is None:
        raise _Failed(
            f"tenant {tenant} is not registered; "
            f"run `stella orchestrator tenants add {tenant}` first"
        )
    print(f"tenant {row['id']} weight {row['weight']}")
    return 0


def _bounded(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


@_reporting
def _incident_policy(args: argparse.Namespace) -> int:
    """Sets a tenant's incident policy (an option left out keeps the deployment default), or
    lists the overrides when no tenant is named."""
    if args.tenant:
        validate_tenant_id(args.tenant, "tenant")

    async def work(db: Database) -> Any:
        store = IncidentStore(db)
        if args.tenant:
            await store.incident_policy_upsert(
                args.tenant, args.threshold, args.window_s, args.quiet_s
            )
        return await store.incident_policy_list()

    rows = _admin(args, work)
    print("TENANT  THRESHOLD  WINDOW_S  QUIET_S  (- = the ORCH_INCIDENT_* default)")
    for r in rows:
        values = (r["failure_threshold"], r["window_s"], r["quiet_s"])
        print(r["tenant"], *("-" if v is None else v for v in values), sep="  ")
    return 0


def register(commands: Any) -> None:
    """Adds ``migrate`` and ``tenants`` to ``stella orchestrator``."""
    mig = commands.add_parser(
        "migrate",
        help="apply database migrations (idempotent, safe to run concurrently)",
        description="Apply the ledger's SQL migrations in order; a second run is a no-op.",
    )
    _add_db_arg(mig)
    mig.set_defaults(handler=_migrate)

    tenants = commands.add_parser("tenants", help="register and list tenants")
    tsub = tenants.add_subparsers(dest="tenants_command", required=True, metavar="ACTION")
    add = tsub.add_parser("add", help="register a tenant (idempotent)")
    add.add_argument("tenant", help="tenant id: lowercase letters, digits and '-'")
    add.add_argument("--display-name", default="", help="human-readable name")
    _add_db_arg(add)
    add.set_defaults(handler=_tenants_add)
    lst = tsub.add_parser("list", help="list registered tenants")
    _add_db_arg(lst)
    lst.set_defaults(handler=_tenants_list)
    wgt = tsub.add_parser(
        "weight",
        help="set a tenant's share of the worker slots (weighted fair share, default 1)",
        description="Set a tenant's weight: against other tenants with ready jobs of the same "
        "types it gets that many leases for every one of a weight-1 tenant (caps, quotas and "
        "rate limits still apply).",
    )
    wgt.add_argument("tenant", help="tenant id")
    wgt.add_argument("weight", type=_bounded(1, 1000), help="1 to 1000")
    _add_db_arg(wgt)
    wgt.set_defaults(handler=_tenants_weight)
    pol = tsub.add_parser(
        "incident-policy",
        help="override when a tenant's failures open and resolve incidents (docs/incidents.md)",
        description="Set a tenant's incident policy (options left out keep the deployment's "
        "ORCH_INCIDENT_* defaults); without a tenant, list the overrides.",
    )
    pol.add_argument("tenant", nargs="?", default="", help="tenant id; omit to list")
    pol.add_argument("--threshold", type=_bounded(1, 10_000), help="failures that open one")
    pol.add_argument("--window-s", type=_bounded(1, 86_400), help="within this many seconds")
    pol.add_argument("--quiet-s", type=_bounded(1, 604_800), help="resolve after this quiet")
    _add_db_arg(pol)
    pol.set_defaults(handler=_incident_policy)
