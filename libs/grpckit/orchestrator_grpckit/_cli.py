"""``stella orchestrator token mint``: dev/test tokens signed with the HS256 secret."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from orchestrator_grpckit._auth import mint_dev_token
from orchestrator_grpckit._config import DEV_HS256_SECRET

KNOWN_SCOPES = (
    "orch:read",
    "orch:operate",
    "orch:quota",
    "orch:backfill",
    "orch:work",
    "orch:admin",
)


def _mint(args: argparse.Namespace) -> int:
    scopes = [s for s in args.scopes.split(",") if s]
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        print(
            f"error: unknown scope(s) {', '.join(unknown)}; known: {', '.join(KNOWN_SCOPES)}",
            file=sys.stderr,
        )
        return 2
    secret = os.environ.get("ORCH_AUTH_HS256_SECRET") or DEV_HS256_SECRET
    tenants = [t for t in args.tenant.split(",") if t]
    job_types = [j for j in (args.job_types or "").split(",") if j]
    print(mint_dev_token(secret, args.subject, tenants, scopes, job_types, ttl_s=args.ttl))
    return 0


def register(commands: Any) -> None:
    """Adds ``token mint`` to ``stella orchestrator``."""
    token = commands.add_parser("token", help="mint development tokens")
    tsub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    mint = tsub.add_parser(
        "mint",
        help="print a signed JWT (HS256 with $ORCH_AUTH_HS256_SECRET, else the dev secret)",
    )
    mint.add_argument("--tenant", required=True, help="tenant id, several comma separated, or '*'")
    mint.add_argument("--subject", default="dev", help="token subject (default: dev)")
    mint.add_argument(
        "--scopes", default="orch:read", help=f"comma separated; known: {','.join(KNOWN_SCOPES)}"
    )
    mint.add_argument("--job-types", default="", help="worker tokens: job types it may serve")
    mint.add_argument("--ttl", type=float, default=3600.0, help="lifetime in seconds")
    mint.set_defaults(handler=_mint)
