"""``stella orchestrator webhooks …``: a tenant's webhook subscriptions and their delivery
log over the gateway's REST API (docs/webhooks.md). Built on
:mod:`stella_orchestrator._restcli`: the same options, output and exit codes. The secret is
printed by ``create`` and ``rotate-secret`` only: store it then.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from stella_orchestrator._rest import RestClient
from stella_orchestrator._restcli import EXIT_OK, Output, _list

WEBHOOK_COLUMNS = (
    ("ID", "id"),
    ("URL", "url"),
    ("EVENTS", "event_types"),
    ("ENABLED", "enabled"),
    ("DISABLED BECAUSE", "disabled_reason"),
    ("FAILURE STREAK", "failure_streak"),
    ("DESCRIPTION", "description"),
)
DELIVERY_COLUMNS = (
    ("ID", "id"),
    ("EVENT", "event_type"),
    ("SEQ", "event_seq"),
    ("STATE", "state"),
    ("ATTEMPTS", "attempt"),
    ("STATUS", "status_code"),
    ("LATENCY MS", "latency_ms"),
    ("NEXT (UTC)", "next_attempt_time"),
    ("ERROR", "error"),
)


def _list_webhooks(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    return _list(args, client, out, "/webhooks", WEBHOOK_COLUMNS)


def _show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    out.record(client.get(f"/webhooks/{args.id}"))
    return EXIT_OK


def _with_secret(out: Output, result: dict[str, Any]) -> int:
    if out.mode == "json":
        out.json(result)
        return EXIT_OK
    out.record(result["webhook"])
    out.out.print(f"secret: {result['secret']}  (shown once: store it now)")
    return EXIT_OK


def _create(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body = {
        "url": args.url,
        "event_types": args.event,
        "source_id": args.source,
        "job_type": args.job_type,
        "description": args.description,
    }
    return _with_secret(out, client.request("POST", "/webhooks", json=body, reason=args.reason))


def _update(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body: dict[str, Any] = {
        k: v
        for k, v in {
            "url": args.url,
            "event_types": args.event or None,
            "source_id": args.source,
            "job_type": args.job_type,
            "description": args.description,
            "enabled": {"true": True, "false": False}.get(args.enabled or ""),
        }.items()
        if v is not None
    }
    result = client.request("PATCH", f"/webhooks/{args.id}", json=body, reason=args.reason)
    out.record(result)
    return EXIT_OK


def _delete(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    client.request("DELETE", f"/webhooks/{args.id}", reason=args.reason, ticket=args.ticket)
    out.out.print(f"deleted {args.id}")
    return EXIT_OK


def _rotate(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    path = f"/webhooks/{args.id}/rotate-secret"
    return _with_secret(out, client.request("POST", path, reason=args.reason, ticket=args.ticket))


def _deliveries(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    path = f"/webhooks/{args.id}/deliveries"
    return _list(args, client, out, path, DELIVERY_COLUMNS, state=args.state)


def _redeliver(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    path = f"/webhook-deliveries/{args.id}/redeliver"
    out.record(client.request("POST", path, reason=args.reason, ticket=args.ticket))
    return EXIT_OK


Leaf = Callable[..., argparse.ArgumentParser]


def register_webhooks(
    commands: Any,
    leaf: Leaf,
    paging: argparse.ArgumentParser,
    control: argparse.ArgumentParser,
) -> None:
    """Adds ``webhooks`` (``leaf`` makes one command with the common options, as in
    :func:`stella_orchestrator._restcli.register`)."""
    hooks = commands.add_parser(
        "webhooks", help="webhook subscriptions: list, show, create, update, delete, deliveries"
    )
    sub = hooks.add_subparsers(dest="webhook_command", required=True, metavar="ACTION")
    leaf(sub, "list", _list_webhooks, "list subscriptions (no secrets)", paging)
    p = leaf(sub, "show", _show, "show one subscription")
    p.add_argument("id")
    p = leaf(sub, "create", _create, "subscribe a URL to event types (prints the secret once)")
    p.add_argument("--url", required=True)
    p.add_argument(
        "--event",
        action="append",
        required=True,
        help="event type (job.dead), family (job.), * or run.finished; repeatable",
    )
    p.add_argument("--source", default="", help="only events of this source")
    p.add_argument("--job-type", default="", help="only events of this job type")
    p.add_argument("--description", default="")
    p.add_argument("--reason", default="", help="why (audited)")
    p = leaf(sub, "update", _update, "change a subscription (enable, disable, filters, URL)")
    p.add_argument("id")
    p.add_argument("--url")
    p.add_argument("--event", action="append", default=[])
    p.add_argument("--source", help="'' removes the filter")
    p.add_argument("--job-type", help="'' removes the filter")
    p.add_argument("--description")
    p.add_argument("--enabled", choices=("true", "false"))
    p.add_argument("--reason", default="", help="why (audited)")
    p = leaf(sub, "delete", _delete, "delete a subscription and its delivery log", control)
    p.add_argument("id")
    p = leaf(sub, "rotate-secret", _rotate, "issue a new secret (prints it once)", control)
    p.add_argument("id")
    p = leaf(sub, "deliveries", _deliveries, "a subscription's delivery log", paging)
    p.add_argument("id")
    p.add_argument("--state", choices=("pending", "succeeded", "failed"))
    p = leaf(sub, "redeliver", _redeliver, "send a delivery again now", control)
    p.add_argument("id", help="delivery id")
