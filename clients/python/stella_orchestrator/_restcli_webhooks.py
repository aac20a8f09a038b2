"""``stella orchestrator webhooks …``: a tenant's webhook subscriptions and their delivery
log over the gateway's REST API (docs/webhooks.md). The secret is printed by ``create`` and
``rotate-secret`` only: store it then.
"""

from __future__ import annotations

import argparse
from typing import Any

from stella_orchestrator._cli_base import (
    EXIT_OK,
    Commands,
    Output,
    control,
    delete_one,
    list_of,
    show_one,
)
from stella_orchestrator._rest import RestClient

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


def _with_secret(out: Output, result: dict[str, Any]) -> int:
    def render(value: dict[str, Any]) -> None:
        out.record(value["webhook"])
        out.out.print(f"secret: {value['secret']}  (shown once: store it now)", markup=False)

    out.show(result, render=render)
    return EXIT_OK


def _create(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body = {
        "url": args.url,
        "event_types": args.event,
        "source_id": args.source,
        "job_type": args.job_type,
        "description": args.description,
    }
    return _with_secret(out, client.request("POST", "/webhooks", json=body, **control(args)))


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
    out.show(client.request("PATCH", f"/webhooks/{args.id}", json=body, **control(args)))
    return EXIT_OK


def _rotate(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    path = f"/webhooks/{args.id}/rotate-secret"
    return _with_secret(out, client.request("POST", path, **control(args)))


def _redeliver(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    path = f"/webhook-deliveries/{args.id}/redeliver"
    out.show(client.request("POST", path, **control(args)))
    return EXIT_OK


def register(c: Commands) -> None:
    sub = c.group(
        "webhooks", "webhook subscriptions: list, show, create, update, delete, deliveries"
    )
    c.leaf(
        sub,
        "list",
        list_of("/webhooks", WEBHOOK_COLUMNS),
        "list subscriptions (no secrets)",
        c.paging,
        ops=["GET /webhooks"],
    )
    p = c.leaf(
        sub,
        "show",
        show_one("webhooks"),
        "show one subscription",
        ops=["GET /webhooks/{webhook_id}"],
        item="webhook_id",
    )
    p = c.leaf(
        sub,
        "create",
        _create,
        "subscribe a URL to event types (prints the secret once)",
        c.why,
        ops=["POST /webhooks"],
    )
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
    p = c.leaf(
        sub,
        "update",
        _update,
        "change a subscription (enable, disable, filters, URL)",
        c.why,
        ops=["PATCH /webhooks/{webhook_id}"],
        item="webhook_id",
    )
    p.add_argument("--url")
    p.add_argument("--event", action="append", default=[])
    p.add_argument("--source", help="'' removes the filter")
    p.add_argument("--job-type", help="'' removes the filter")
    p.add_argument("--description")
    p.add_argument("--enabled", choices=("true", "false"))
    p = c.leaf(
        sub,
        "delete",
        delete_one("webhooks"),
        "delete a subscription and its delivery log",
        c.control,
        ops=["DELETE /webhooks/{webhook_id}"],
        item="webhook_id",
    )
    p = c.leaf(
        sub,
        "rotate-secret",
        _rotate,
        "issue a new secret (prints it once)",
        c.control,
        ops=["POST /webhooks/{webhook_id}/rotate-secret"],
        item="webhook_id",
    )
    p = c.leaf(
        sub,
        "deliveries",
        list_of("/webhooks/{id}/deliveries", DELIVERY_COLUMNS, state="state"),
        "a subscription's delivery log",
        c.paging,
        ops=["GET /webhooks/{webhook_id}/deliveries"],
        item="webhook_id",
    )
    p.add_argument("--state", choices=("pending", "succeeded", "failed"))
    p = c.leaf(
        sub,
        "redeliver",
        _redeliver,
        "send a delivery again now",
        c.control,
        ops=["POST /webhook-deliveries/{delivery_id}/redeliver"],
        item="delivery_id",
    )
