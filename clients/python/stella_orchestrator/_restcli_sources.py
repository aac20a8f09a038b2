"""``stella orchestrator sources|throttle|whoami …``: the upstream systems jobs fetch from,
their rate-limit keys (token buckets, operator overrides, circuit breakers, blackouts), and
the caller as the gateway sees the token."""

from __future__ import annotations

import argparse

from stella_orchestrator._cli_base import (
    EXIT_OK,
    Commands,
    Output,
    control,
    delete_one,
    list_of,
    parse_labels,
    show_one,
)
from stella_orchestrator._rest import RestClient

SOURCE_COLUMNS = (
    ("ID", "id"),
    ("NAME", "name"),
    ("TYPE", "source_type"),
    ("HOST", "host"),
    ("ENABLED", "enabled"),
    ("PAUSED", "paused"),
    ("PAUSE REASON", "paused_reason"),
)
SOURCE_FIELDS = ("id", "name", "paused", "paused_reason", "paused_ticket", "version")
BUCKET_COLUMNS = (
    ("HOST", "key.host"),
    ("TOKENS", "tokens"),
    ("CAPACITY", "capacity"),
    ("RATE/S", "refill_per_second"),
    ("EFFECTIVE/S", "effective_refill_per_second"),
    ("PAUSED UNTIL (UTC)", "paused_until"),
    ("CIRCUIT", "circuit_state"),
    ("REASON", "reason"),
)
CIRCUIT_COLUMNS = (
    ("HOST", "key.host"),
    ("STATE", "state"),
    ("FAILURES", "failure_count"),
    ("REQUESTS", "request_count"),
    ("LAST ERROR", "last_error_class"),
    ("OPENED (UTC)", "opened_at"),
    ("RETRY AT (UTC)", "half_open_at"),
)
BLACKOUT_COLUMNS = (
    ("ID", "id"),
    ("SOURCE", "source_id"),
    ("FROM (UTC)", "start"),
    ("TO (UTC)", "end"),
    ("RECURRENCE", "recurrence"),
    ("REASON", "reason"),
    ("TICKET", "ticket"),
)
_BOOL = {"true": True, "false": False}


def _create(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body = {
        "name": args.name,
        "source_type": args.type,
        "host": args.host,
        "base_url": args.base_url,
        "job_types": args.job_type,
        "labels": parse_labels(args.label),
    }
    body = {k: v for k, v in body.items() if v is not None}
    key = args.idempotency_key or None
    out.show(client.request("POST", "/sources", json=body, idempotency_key=key, **control(args)))
    return EXIT_OK


def _update(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    fields = {
        "name": args.name,
        "source_type": args.type,
        "host": args.host,
        "base_url": args.base_url,
        "enabled": _BOOL.get(args.enabled or ""),
        "job_types": args.job_type or None,
        "labels": parse_labels(args.label) if args.label else None,
        "version": args.version,
    }
    body = {k: v for k, v in fields.items() if v is not None}
    source = client.request("PATCH", f"/sources/{args.id}", json=body, **control(args))
    out.show(source)
    return EXIT_OK


def _pause(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    path = f"/sources/{args.id}/{args.sources_command}"
    out.show(client.request("POST", path, **control(args)), fields=SOURCE_FIELDS)
    return EXIT_OK


def _whoami(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    out.show(client.get("/whoami"), fields=["subject", "tenant", "tenants", "scopes"])
    return EXIT_OK


def _throttle_set(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body = {"refill_per_second": args.rate, "duration_s": args.duration}
    path = f"/sources/{args.source_id}/throttle"
    result = client.request("POST", path, json=body, **control(args))
    out.show(result, columns=BUCKET_COLUMNS, items="bucket")
    return EXIT_OK


def _throttle_clear(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    path = f"/sources/{args.source_id}/throttle"
    out.show(client.request("DELETE", path, **control(args)), columns=BUCKET_COLUMNS)
    return EXIT_OK


def _configure(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body = {"capacity": args.capacity, "refill_per_second": args.rate}
    path = f"/throttles/buckets/{args.host}"
    out.show(client.request("PUT", path, json=body, **control(args)), columns=BUCKET_COLUMNS)
    return EXIT_OK


def _source_flags(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--name", required=required, default=None)
    p.add_argument("--type", required=required, default=None, help="source type")
    p.add_argument("--host", required=required, default=None, help="rate-limit key host")
    p.add_argument("--base-url", default=None)
    p.add_argument("--job-type", action="append", default=[], help="repeatable")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE; repeatable")


def register(c: Commands) -> None:
    sub = c.group("sources", "sources: list, show, create, update, delete, pause, resume")
    p = c.leaf(
        sub,
        "list",
        list_of("/sources", SOURCE_COLUMNS, source_type="type", enabled="enabled"),
        "list sources",
        c.paging,
        ops=["GET /sources"],
    )
    p.add_argument("--type", default="", help="only this source type")
    p.add_argument("--enabled", choices=("true", "false"), default=None)
    p = c.leaf(
        sub,
        "show",
        show_one("sources"),
        "show one source",
        ops=["GET /sources/{source_id}"],
        item="source_id",
    )
    p = c.leaf(sub, "create", _create, "register a source", c.why, ops=["POST /sources"])
    _source_flags(p, required=True)
    p.add_argument("--idempotency-key", default=None)
    p = c.leaf(
        sub,
        "update",
        _update,
        "change fields of a source",
        c.why,
        ops=["PATCH /sources/{source_id}"],
        item="source_id",
    )
    _source_flags(p, required=False)
    p.add_argument("--enabled", choices=("true", "false"))
    p.add_argument("--version", type=int, default=0, help="expected version (0: do not check)")
    p = c.leaf(
        sub,
        "delete",
        delete_one("sources"),
        "remove a source without unfinished jobs",
        c.control,
        ops=["DELETE /sources/{source_id}"],
        item="source_id",
    )
    for name in ("pause", "resume"):
        p = c.leaf(
            sub,
            name,
            _pause,
            f"{name} leasing a source's jobs",
            c.control,
            ops=[f"POST /sources/{{source_id}}/{name}"],
            item="source_id",
        )

    c.leaf(
        c.commands,
        "whoami",
        _whoami,
        "the caller: subject, tenant, scopes",
        ops=["GET /whoami"],
    )

    sub = c.group("throttle", "rate limits: buckets, overrides, circuits, blackouts")
    c.leaf(
        sub,
        "list",
        list_of("/throttles/buckets", BUCKET_COLUMNS),
        "list token buckets",
        c.paging,
        ops=["GET /throttles/buckets"],
    )
    p = c.leaf(
        sub,
        "circuits",
        list_of("/throttles/circuits", CIRCUIT_COLUMNS, state="state"),
        "list circuit breakers",
        c.paging,
        ops=["GET /throttles/circuits"],
    )
    p.add_argument("--state", action="append", choices=("closed", "open", "half_open"), default=[])
    p = c.leaf(
        sub,
        "blackouts",
        list_of("/throttles/blackouts", BLACKOUT_COLUMNS, source_id="source"),
        "list blackout windows",
        c.paging,
        ops=["GET /throttles/blackouts"],
    )
    p.add_argument("--source", default="", help="source id")
    p = c.leaf(
        sub,
        "set",
        _throttle_set,
        "pin a source's rate for a while (0 pauses)",
        c.control,
        ops=["POST /sources/{source_id}/throttle"],
    )
    p.add_argument("source_id")
    p.add_argument("--rate", type=float, required=True, help="tokens per second")
    p.add_argument("--duration", type=float, default=3600.0, help="seconds (default 3600)")
    p = c.leaf(
        sub,
        "clear",
        _throttle_clear,
        "remove a source's override",
        c.control,
        ops=["DELETE /sources/{source_id}/throttle"],
    )
    p.add_argument("source_id")
    p = c.leaf(
        sub,
        "configure",
        _configure,
        "set capacity and refill rate of one host's bucket",
        c.control,
        ops=["PUT /throttles/buckets/{host}"],
    )
    p.add_argument("host")
    p.add_argument("--capacity", type=int, required=True)
    p.add_argument("--rate", type=float, required=True, help="tokens per second")
