"""``stella orchestrator deadletter|incidents|overview|artifacts …``: what failed and how
the tenant is doing — the dead-letter queue (bulk replay in one audited call), incidents the
scheduler opens from failure clusters (timeline, acknowledgement), the overview (queue depth,
throughput, SLO burn) and the artifacts of a job or run."""

from __future__ import annotations

import argparse
from typing import Any

from stella_orchestrator._cli_base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Commands,
    Output,
    control,
    list_items,
    list_of,
    show_one,
)
from stella_orchestrator._rest import RestClient
from stella_orchestrator._restcli_jobs import ARTIFACT_COLUMNS

ERROR_CLASSES = (
    "http_429",
    "http_5xx",
    "http_4xx",
    "timeout",
    "parse_error",
    "schema_mismatch",
    "lease_expired",
    "worker_crash",
    "canceled",
    "internal",
    "other",
)
DEAD_STATUSES = ("pending", "replayed", "resolved", "discarded")

# ------------------------------------------------------------------------- dead letter

DEAD_COLUMNS = (
    ("ID", "id"),
    ("JOB", "job_id"),
    ("TYPE", "job_type"),
    ("CLASS", "error_class"),
    ("RETRYABLE", "retryable"),
    ("ATTEMPTS", "attempts"),
    ("STATUS", "status"),
    ("FAILED (UTC)", "failed_at"),
    ("ERROR", "last_error.message"),
)


def _dead_stats(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    stats = client.get("/deadletter/stats", status=args.status)
    out.show(
        stats,
        columns=(
            ("CLASS", "error_class"),
            ("JOB TYPE", "job_type"),
            ("SOURCE", "source_id"),
            ("COUNT", "count"),
            ("RETRYABLE", "retryable_count"),
            ("LAST (UTC)", "last_failed_at"),
            ("SAMPLE", "sample_message"),
        ),
        items="clusters",
        title=f"{stats['total']} {args.status} entries",
    )
    return EXIT_OK


def _dead_replay(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    if args.id:
        result = client.request("POST", f"/deadletter/{args.id}/replay", **control(args))
        out.show(
            result,
            summary=lambda r: f"replayed {args.id}: job {r['job']['id']} is {r['job']['state']}",
        )
        return EXIT_OK
    # Bulk: one call; the scheduler replays every match (at most --limit) and says which failed.
    body = {
        "error_class": args.error_class,
        "job_type": args.job_type or None,
        "source_id": args.source or None,
        "retryable": {"true": True, "false": False}.get(args.retryable or ""),
        "limit": args.limit,
    }
    body = {k: v for k, v in body.items() if v is not None}
    with out.err.status("replaying matching dead-letter entries"):
        result = client.request("POST", "/deadletter/replay", json=body, **control(args))

    def render(r: dict[str, Any]) -> None:
        out.out.print(f"{len(r['replayed'])} of {r['matched']} entries replayed")
        for item in r["failed"]:
            out.note(f"  {item.get('entry_id')}: {item.get('error') or item}")

    out.show(result, render=render)
    return EXIT_OK if not result["failed"] else EXIT_FAILED


# ------------------------------------------------------------------------- incidents

INCIDENT_COLUMNS = (
    ("ID", "id"),
    ("STATE", "state"),
    ("CLASS", "error_class"),
    ("JOB TYPE", "job_type"),
    ("SOURCE", "source_id"),
    ("FAILURES", "failure_count"),
    ("FIRST (UTC)", "first_seen_at"),
    ("LAST (UTC)", "last_seen_at"),
    ("ACKNOWLEDGED BY", "acknowledged_by"),
)
TIMELINE_COLUMNS = (
    ("AT (UTC)", "occurred_at"),
    ("EVENT", "type"),
    ("FAILURES", "failure_count"),
    ("BY", "actor"),
    ("REASON", "reason"),
)
INCIDENT_FIELDS = (
    "id",
    "state",
    "reason_code",
    "error_class",
    "job_type",
    "source_id",
    "failure_count",
    "first_seen_at",
    "last_seen_at",
    "resolved_at",
    "sample_job_ids",
    "acknowledged_by",
    "acknowledged_at",
    "acknowledge_reason",
)


def _incidents_show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    def render(got: dict[str, Any]) -> None:
        out.record(got["incident"], INCIDENT_FIELDS)
        out.table(got.get("timeline") or [], TIMELINE_COLUMNS, title="timeline")

    out.show(client.get(f"/incidents/{args.id}"), render=render)
    return EXIT_OK


def _incidents_ack(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    result = client.request("POST", f"/incidents/{args.id}/acknowledge", **control(args))
    out.show(result, summary=lambda r: f"acknowledged {args.id} as {r['acknowledged_by']}")
    return EXIT_OK


def _overview(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    out.show(client.get("/overview", window_s=args.window))
    return EXIT_OK


def _artifacts(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    if bool(args.job) == bool(args.run):
        raise CliError(EXIT_USAGE, "give exactly one of --job and --run")
    path = "/artifacts"
    return list_items(args, client, out, path, ARTIFACT_COLUMNS, job_id=args.job, run_id=args.run)


def register(c: Commands) -> None:
    sub = c.group("deadletter", "dead-letter entries: list, show, stats, replay")
    p = c.leaf(
        sub,
        "list",
        list_of(
            "/deadletter",
            DEAD_COLUMNS,
            status="status",
            error_class="error_class",
            job_type="job_type",
            source_id="source",
        ),
        "list dead-letter entries (newest first)",
        c.paging,
        ops=["GET /deadletter"],
    )
    p.add_argument("--status", choices=DEAD_STATUSES)
    p.add_argument("--error-class", choices=ERROR_CLASSES)
    p.add_argument("--job-type", default="")
    p.add_argument("--source", default="", help="source id")
    p = c.leaf(
        sub,
        "show",
        show_one("deadletter"),
        "show one entry",
        ops=["GET /deadletter/{entry_id}"],
        item="entry_id",
    )
    p = c.leaf(
        sub,
        "stats",
        _dead_stats,
        "entries clustered by error class, job type, source",
        ops=["GET /deadletter/stats"],
    )
    p.add_argument("--status", choices=DEAD_STATUSES, default="pending")
    p = c.leaf(
        sub,
        "replay",
        _dead_replay,
        "replay one entry, or every pending match (bulk, one audited call)",
        c.control,
        ops=["POST /deadletter/{entry_id}/replay", "POST /deadletter/replay"],
    )
    p.add_argument("id", nargs="?", help="entry id; omit to replay every matching entry")
    p.add_argument("--error-class", choices=ERROR_CLASSES)
    p.add_argument("--job-type", default="")
    p.add_argument("--source", default="", help="source id")
    p.add_argument("--retryable", choices=("true", "false"), default=None)
    p.add_argument("--limit", type=int, default=100, help="bulk: at most this many (<= 500)")

    sub = c.group("incidents", "incidents: list, show, ack")
    p = c.leaf(
        sub,
        "list",
        list_of("/incidents", INCIDENT_COLUMNS, state="state"),
        "list incidents (most recently seen first)",
        c.paging,
        ops=["GET /incidents"],
    )
    p.add_argument("--state", choices=("open", "resolved"))
    p = c.leaf(
        sub,
        "show",
        _incidents_show,
        "show one incident and its timeline",
        ops=["GET /incidents/{incident_id}"],
        item="incident_id",
    )
    p = c.leaf(
        sub,
        "ack",
        _incidents_ack,
        "acknowledge an incident (who and why)",
        c.control,
        ops=["POST /incidents/{incident_id}/acknowledge"],
        item="incident_id",
    )

    p = c.leaf(
        c.commands,
        "overview",
        _overview,
        "queue depth, throughput, failure rate and SLO burn",
        ops=["GET /overview"],
    )
    p.add_argument("--window", type=float, default=900.0, help="rate window in seconds")
    p = c.leaf(
        c.commands,
        "artifacts",
        _artifacts,
        "artifacts of one job or one run",
        c.paging,
        ops=["GET /artifacts"],
    )
    p.add_argument("--job", default="", help="job id")
    p.add_argument("--run", default="", help="run id")
