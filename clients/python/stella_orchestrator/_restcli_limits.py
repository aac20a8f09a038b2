"""``stella orchestrator quotas|schedules …``: caps on the tenant's (or one job type's) jobs,
and cron schedules (UTC) that create runs from a template — the template is a DAG file, the
same as ``runs create -f`` takes."""

from __future__ import annotations

import argparse
from typing import Any

from stella_orchestrator._cli_base import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Commands,
    Output,
    control,
    delete_one,
    list_items,
    show_one,
)
from stella_orchestrator._cli_dagfile import RUN_SCHEMA, load
from stella_orchestrator._rest import RestClient

QUOTA_COLUMNS = (
    ("ID", "id"),
    ("JOB TYPE", "job_type"),
    ("MAX ACTIVE", "max_active"),
    ("MAX/HOUR", "max_per_hour"),
    ("BURST", "burst"),
    ("MAX QUEUED", "max_queued"),
    ("PAUSED", "paused"),
    ("REASON", "reason"),
    ("UPDATED (UTC)", "updated_at"),
)
QUOTA_LIMITS = ("max_active", "max_per_hour", "burst", "max_queued")
SCHEDULE_COLUMNS = (
    ("ID", "id"),
    ("NAME", "name"),
    ("CRON (UTC)", "cron"),
    ("ENABLED", "enabled"),
    ("CATCH UP", "catch_up"),
    ("OVERLAP", "overlap"),
    ("NEXT (UTC)", "next_fire_at"),
    ("LAST (UTC)", "last_fire_at"),
)
_BOOL = {"true": True, "false": False}


def _quotas_list(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    path = "/quotas"
    paused = args.paused
    return list_items(args, client, out, path, QUOTA_COLUMNS, job_type=args.type, paused=paused)


def _quota_limits(args: argparse.Namespace) -> dict[str, Any]:
    values = {name: getattr(args, name) for name in QUOTA_LIMITS}
    values["paused"] = _BOOL.get(args.paused or "")
    return {k: v for k, v in values.items() if v is not None}


def _quota_create(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body = {"job_type": args.type, **_quota_limits(args)}
    out.show(client.request("POST", "/quotas", json=body, **control(args)), columns=QUOTA_COLUMNS)
    return EXIT_OK


def _quota_update(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body = _quota_limits(args)
    if not body:
        raise CliError(EXIT_USAGE, "nothing to change: give a limit or --paused")
    quota = client.request("PATCH", f"/quotas/{args.id}", json=body, **control(args))
    out.show(quota, columns=QUOTA_COLUMNS)
    return EXIT_OK


def _schedules_list(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    enabled = args.enabled
    return list_items(args, client, out, "/schedules", SCHEDULE_COLUMNS, enabled=enabled)


def _schedule_show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    schedule = client.get(f"/schedules/{args.id}")

    def render(value: dict[str, Any]) -> None:
        out.record(value, [k for _, k in SCHEDULE_COLUMNS] + ["source_id", "catch_up_window"])
        template = value.get("run_template") or {}
        jobs = template.get("jobs") or []
        columns = (("KEY", "key"), ("TYPE", "job_type"), ("AFTER", "depends_on"))
        out.table(jobs, columns, title=f"run template {template.get('name', '')!r}")

    out.show(schedule, render=render)
    return EXIT_OK


def _schedule_create(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    dag = load(args.file, RUN_SCHEMA)
    unused = sorted(set(dag) & {"correlation_id", "idempotency_key"})
    if unused:
        raise CliError(EXIT_USAGE, f"{args.file}: a schedule's run template has no {unused[0]}")
    body: dict[str, Any] = {
        "name": args.name,
        "cron": args.cron,
        "source_id": args.source or dag.get("source_id", ""),
        "run_template": {k: dag[k] for k in ("name", "project", "labels", "jobs") if k in dag},
        "enabled": not args.disabled,
    }
    for field in ("catch_up", "overlap", "catch_up_window_s"):
        if getattr(args, field) is not None:
            body[field] = getattr(args, field)
    schedule = client.request("POST", "/schedules", json=body, **control(args))
    out.show(schedule, columns=SCHEDULE_COLUMNS)
    return EXIT_OK


def _schedule_update(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    fields = {
        "name": args.name,
        "cron": args.cron,
        "catch_up": args.catch_up,
        "overlap": args.overlap,
        "enabled": _BOOL.get(args.enabled or ""),
    }
    body = {k: v for k, v in fields.items() if v is not None}
    if not body:
        raise CliError(EXIT_USAGE, "nothing to change")
    schedule = client.request("PATCH", f"/schedules/{args.id}", json=body, **control(args))
    out.show(schedule, columns=SCHEDULE_COLUMNS)
    return EXIT_OK


def _quota_flags(p: argparse.ArgumentParser) -> None:
    for name in QUOTA_LIMITS:
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, type=int, default=None, help="0: no limit")
    p.add_argument("--paused", choices=("true", "false"), default=None)


def _schedule_policies(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catch-up", choices=("skip", "one", "all"), default=None)
    p.add_argument("--overlap", choices=("skip", "buffer_one", "allow"), default=None)


def register(c: Commands) -> None:
    sub = c.group("quotas", "quotas: caps on active, hourly and queued jobs")
    p = c.leaf(sub, "list", _quotas_list, "list quotas", c.paging, ops=["GET /quotas"])
    p.add_argument("--type", default="", help="job type")
    p.add_argument("--paused", choices=("true", "false"), default=None)
    p = c.leaf(
        sub,
        "show",
        show_one("quotas"),
        "show one quota",
        ops=["GET /quotas/{quota_id}"],
        item="quota_id",
    )
    p = c.leaf(
        sub,
        "create",
        _quota_create,
        "set a quota (scope orch:quota)",
        c.control,
        ops=["POST /quotas"],
    )
    p.add_argument("--type", default="", help="job type (default: the whole tenant)")
    _quota_flags(p)
    p = c.leaf(
        sub,
        "update",
        _quota_update,
        "change a quota's limits or pause it",
        c.control,
        ops=["PATCH /quotas/{quota_id}"],
        item="quota_id",
    )
    _quota_flags(p)
    p = c.leaf(
        sub,
        "delete",
        delete_one("quotas"),
        "remove a quota",
        c.control,
        ops=["DELETE /quotas/{quota_id}"],
        item="quota_id",
    )

    sub = c.group("schedules", "cron schedules (UTC) that create runs from a DAG template")
    p = c.leaf(sub, "list", _schedules_list, "list schedules", c.paging, ops=["GET /schedules"])
    p.add_argument("--enabled", choices=("true", "false"), default=None)
    p = c.leaf(
        sub,
        "show",
        _schedule_show,
        "one schedule: next and last fire times, its run template",
        ops=["GET /schedules/{schedule_id}"],
        item="schedule_id",
    )
    p = c.leaf(
        sub,
        "create",
        _schedule_create,
        "register a schedule; its run template is a DAG file as for `runs create`",
        c.why,
        ops=["POST /schedules"],
    )
    p.add_argument("--name", required=True)
    p.add_argument("--cron", required=True, help="five fields, UTC, e.g. '0 * * * *'")
    p.add_argument("-f", "--file", required=True, help="the run template (YAML or JSON)")
    p.add_argument("--source", default="", help="source id (default: the file's source_id)")
    _schedule_policies(p)
    p.add_argument("--catch-up-window-s", type=float, default=None, help="seconds")
    p.add_argument("--disabled", action="store_true", help="create it disabled")
    p = c.leaf(
        sub,
        "update",
        _schedule_update,
        "change a schedule (--enabled false stops it)",
        c.why,
        ops=["PATCH /schedules/{schedule_id}"],
        item="schedule_id",
    )
    p.add_argument("--name", default=None)
    p.add_argument("--cron", default=None)
    _schedule_policies(p)
    p.add_argument("--enabled", choices=("true", "false"), default=None)
    p = c.leaf(
        sub,
        "delete",
        delete_one("schedules"),
        "remove a schedule (the runs it created stay)",
        c.control,
        ops=["DELETE /schedules/{schedule_id}"],
        item="schedule_id",
    )
