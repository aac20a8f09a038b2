"""``stella orchestrator migrate`` and ``stella orchestrator tenants …`` (database admin)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
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


def _tenants_add(args: argparse.Namespace) -> int:
    try:
        tenant = validate_tenant_id(args.tenant, "tenant")
    except InvalidArgument as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def run() -> Any:
        async with Database(_database_url(args), min_size=1, max_size=1) as db:
            return await TenantStore(db).tenant_upsert(tenant, args.display_name)

    try:
        row = asyncio.run(run())
    except psycopg.Error as exc:
        print(f"error: {exc}".rstrip(), file=sys.stderr)
        return 1
    print(f"tenant {row['id']} registered")
    return 0


def _tenants_list(args: argparse.Namespace) -> int:
    async def run() -> Any:
        async with Database(_database_url(args), min_size=1, max_size=1) as db:
            return await TenantStore(db).tenant_list()

    try:
        rows = asyncio.run(run())
    except psycopg.Error as exc:
        print(f"error: {exc}".rstrip(), file=sys.stderr)
        return 1
    width = max([len("TENANT"), *(len(r["id"]) for r in rows)])
    print(f"{'TENANT':<{width}}  CREATED (UTC)         DISPLAY NAME")
    for r in rows:
        created = r["created_at"].strftime("%Y-%m-%d %H:%M:%S")
        print(f"{r['id']:<{width}}  {created:<20}  {r['display_name']}")
    return 0


def _bounded(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def _incident_policy(args: argparse.Namespace) -> int:
    """Sets a tenant's incident policy (an option left out keeps the deployment default), or
    lists the overrides when no tenant is named."""

    async def run() -> Any:
        async with Database(_database_url(args), min_size=1, max_size=1) as db:
            store = IncidentStore(db)
            if args.tenant:
                await store.incident_policy_upsert(
                    args.tenant, args.threshold, args.window_s, args.quiet_s
                )
            return await store.incident_policy_list()

    try:
        if args.tenant:
            validate_tenant_id(args.tenant, "tenant")
        rows = asyncio.run(run())
    except InvalidArgument as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        print(f"error: {exc}".rstrip(), file=sys.stderr)
        return 1
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
