"""``stella orchestrator backfill|watermarks …``: re-processing a past event-time range of a
source in windows (one job each), and how far each source's event time has come."""

from __future__ import annotations

import argparse
from typing import Any

from stella_orchestrator._cli_base import (
    EXIT_FAILED,
    EXIT_OK,
    RUN_TERMINAL,
    Commands,
    Output,
    add_watch_options,
    control,
    list_of,
    show_one,
    watch,
)
from stella_orchestrator._rest import RestClient

BACKFILL_COLUMNS = (
    ("ID", "id"),
    ("SOURCE", "source_id"),
    ("JOB TYPE", "job_type"),
    ("FROM (UTC)", "range.start"),
    ("TO (UTC)", "range.end"),
    ("STATE", "state"),
    ("WINDOWS", "window_count"),
    ("JOBS", "job_count"),
    ("SUPPRESSED", "suppressed_window_count"),
    ("SUCCEEDED", "succeeded_job_count"),
)
PREVIEW_FIELDS = (
    "window_count",
    "job_count",
    "suppressed_window_count",
    "estimated_duration",
    "limited_by",
    "overlapping_backfill_ids",
)
WATERMARK_COLUMNS = (
    ("SOURCE", "source_id"),
    ("JOB TYPE", "job_type"),
    ("HIGH WATERMARK (UTC)", "high_watermark"),
    ("LAST JOB", "last_job_id"),
    ("UPDATED (UTC)", "updated_at"),
)


def _create(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body: dict[str, Any] = {
        "source_id": args.source,
        "job_type": args.job_type,
        "start": args.start,
        "end": args.end,
        "window_size_s": args.window,
        "dry_run": args.dry_run,
    }
    if args.priority is not None:
        body["priority"] = args.priority
    result = client.request("POST", "/backfills", json=body, **control(args))

    def render(value: dict[str, Any]) -> None:
        if value.get("preview") and args.dry_run:
            out.record(value["preview"], PREVIEW_FIELDS)
            return
        out.table([value["backfill"]], BACKFILL_COLUMNS)
        if value.get("existing"):
            out.note("an identical backfill exists; nothing new was created")

    out.show(result, render=render)
    return EXIT_OK


def _cancel(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    backfill = client.request("POST", f"/backfills/{args.id}/cancel", **control(args))
    out.show(backfill, fields=["id", "state", "job_count", "succeeded_job_count"])
    return EXIT_OK


def _watch(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    """Progress bar of a backfill's window jobs until it is terminal."""

    def step(backfill: dict[str, Any]) -> tuple[str, int | None, int, bool]:
        done = backfill["state"] in RUN_TERMINAL
        total = backfill["job_count"]
        return f"backfill {backfill['state']}", total, backfill["succeeded_job_count"], done

    backfill = watch(
        out,
        lambda: client.get(f"/backfills/{args.id}"),
        step,
        interval_s=args.interval,
        timeout_s=args.timeout,
    )
    out.show(backfill, columns=BACKFILL_COLUMNS)
    return EXIT_OK if backfill["state"] == "succeeded" else EXIT_FAILED


def register(c: Commands) -> None:
    sub = c.group("backfill", "backfills: re-process past event-time ranges")
    p = c.leaf(
        sub,
        "list",
        list_of("/backfills", BACKFILL_COLUMNS, source_id="source"),
        "list backfills",
        c.paging,
        ops=["GET /backfills"],
    )
    p.add_argument("--source", default="", help="source id")
    p = c.leaf(
        sub,
        "show",
        show_one("backfills"),
        "show one backfill",
        ops=["GET /backfills/{backfill_id}"],
        item="backfill_id",
    )
    p = c.leaf(
        sub,
        "create",
        _create,
        "backfill a range of a source (scope orch:backfill; --ticket required)",
        c.control,
        ops=["POST /backfills"],
    )
    p.add_argument("--source", required=True, help="source id")
    p.add_argument("--job-type", required=True)
    p.add_argument("--start", required=True, help="RFC 3339 UTC, inclusive")
    p.add_argument("--end", required=True, help="RFC 3339 UTC, exclusive")
    p.add_argument("--window", type=float, default=3600.0, help="window length in seconds")
    p.add_argument("--priority", type=int, default=None)
    p.add_argument("--dry-run", action="store_true", help="preview only")
    p = c.leaf(
        sub,
        "cancel",
        _cancel,
        "cancel a backfill's unfinished jobs",
        c.control,
        ops=["POST /backfills/{backfill_id}/cancel"],
        item="backfill_id",
    )
    p = c.leaf(
        sub,
        "watch",
        _watch,
        "progress bar until the backfill is terminal",
        ops=["GET /backfills/{backfill_id}"],
        item="backfill_id",
    )
    add_watch_options(p)

    sub = c.group("watermarks", "event-time watermarks of the tenant's sources")
    p = c.leaf(
        sub,
        "list",
        list_of("/watermarks", WATERMARK_COLUMNS, source_id="source", job_type="job_type"),
        "how far each source's event time has come",
        c.paging,
        ops=["GET /watermarks"],
    )
    p.add_argument("--source", default="", help="source id")
    p.add_argument("--job-type", default="")
