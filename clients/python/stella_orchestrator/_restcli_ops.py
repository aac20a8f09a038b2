"""``stella orchestrator deadletter|incidents …``: what failed, over the gateway's REST API
(the dead-letter queue; incidents the scheduler opens from failure clusters, with their
timeline, and their acknowledgement). Built on :mod:`stella_orchestrator._restcli`: the same
options, output and exit codes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from stella_orchestrator._rest import RestClient, RestError
from stella_orchestrator._restcli import (
    ERROR_CLASSES,
    EXIT_ERROR,
    EXIT_OK,
    Output,
    _cell,
    _control_post,
    _list,
)

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


def _dead_list(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    return _list(
        args,
        client,
        out,
        "/deadletter",
        DEAD_COLUMNS,
        status=args.status,
        error_class=args.error_class,
        job_type=args.job_type,
    )


def _dead_show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    out.record(client.get(f"/deadletter/{args.id}"))
    return EXIT_OK


def _dead_stats(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    stats = client.get("/deadletter/stats", status=args.status)
    if out.mode == "json":
        out.json(stats)
        return EXIT_OK
    out.table(
        stats["clusters"],
        (
            ("CLASS", "error_class"),
            ("JOB TYPE", "job_type"),
            ("SOURCE", "source_id"),
            ("COUNT", "count"),
            ("RETRYABLE", "retryable_count"),
            ("LAST (UTC)", "last_failed_at"),
            ("SAMPLE", "sample_message"),
        ),
        title=f"{stats['total']} {args.status} entries",
    )
    return EXIT_OK


def _dead_replay(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    if args.id:
        result = client.request(
            "POST", f"/deadletter/{args.id}/replay", reason=args.reason, ticket=args.ticket
        )
        if out.mode == "json":
            out.json(result)
        else:
            out.out.print(
                f"replayed {args.id}: job {result['job']['id']} is {result['job']['state']}"
            )
        return EXIT_OK
    # Bulk: list the matching pending entries, then replay each with a progress bar.
    entries = client.get(
        "/deadletter",
        status="pending",
        error_class=args.error_class,
        job_type=args.job_type,
        page_size=args.limit,
    )["items"]
    replayed, failed = [], []
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        console=out.err,
        transient=out.mode == "json",
    ) as progress:
        task = progress.add_task("replay", total=len(entries))
        for entry in entries:
            try:
                client.request(
                    "POST",
                    f"/deadletter/{entry['id']}/replay",
                    reason=args.reason,
                    ticket=args.ticket,
                )
                replayed.append(entry["id"])
            except RestError as exc:
                if exc.status in (0, 401, 403):
                    raise
                failed.append({"entry_id": entry["id"], "error": str(exc)})
            progress.advance(task)
    if out.mode == "json":
        out.json({"matched": len(entries), "replayed": replayed, "failed": failed})
    else:
        out.out.print(f"{len(replayed)} of {len(entries)} entries replayed")
        for item in failed:
            out.err.print(f"  {item['entry_id']}: {item['error']}")
    return EXIT_OK if not failed else EXIT_ERROR


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


def _incidents_list(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    return _list(args, client, out, "/incidents", INCIDENT_COLUMNS, state=args.state)


def _incidents_show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    got = client.get(f"/incidents/{args.id}")
    if out.mode == "json":
        out.json(got)
        return EXIT_OK
    out.record(got["incident"], INCIDENT_FIELDS)
    timeline = Table(title="timeline")
    for column in ("AT (UTC)", "EVENT", "FAILURES", "BY", "REASON"):
        timeline.add_column(column, overflow="fold")
    for event in got.get("timeline") or []:
        timeline.add_row(
            *(
                _cell(event.get(k))
                for k in ("occurred_at", "type", "failure_count", "actor", "reason")
            )
        )
    out.out.print(timeline)
    return EXIT_OK


def _incidents_ack(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    return _control_post(
        args,
        client,
        out,
        f"/incidents/{args.id}/acknowledge",
        lambda r: f"acknowledged {args.id} as {r['acknowledged_by']}",
    )


Leaf = Callable[..., argparse.ArgumentParser]


def register_operations(
    commands: Any,
    leaf: Leaf,
    paging: argparse.ArgumentParser,
    control: argparse.ArgumentParser,
) -> None:
    """Adds ``deadletter`` and ``incidents`` (``leaf`` makes one command with the common
    options, as in :func:`stella_orchestrator._restcli.register`)."""
    dead = commands.add_parser("deadletter", help="dead-letter entries: list, stats, replay")
    dsub = dead.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    p = leaf(dsub, "list", _dead_list, "list dead-letter entries (newest first)", paging)
    p.add_argument("--status", choices=("pending", "replayed", "resolved", "discarded"))
    p.add_argument("--error-class", choices=ERROR_CLASSES)
    p.add_argument("--job-type", default="")
    p = leaf(dsub, "show", _dead_show, "show one entry")
    p.add_argument("id")
    p = leaf(dsub, "stats", _dead_stats, "entries clustered by error class, job type, source")
    p.add_argument(
        "--status", choices=("pending", "replayed", "resolved", "discarded"), default="pending"
    )
    p = leaf(dsub, "replay", _dead_replay, "replay one entry, or every match (bulk)", control)
    p.add_argument("id", nargs="?", help="entry id; omit to replay every matching entry")
    p.add_argument("--error-class", choices=ERROR_CLASSES)
    p.add_argument("--job-type", default="")
    p.add_argument("--limit", type=int, default=100, help="bulk: at most this many (<= 500)")

    incidents = commands.add_parser("incidents", help="incidents: list, show, ack")
    isub = incidents.add_subparsers(dest="incident_command", required=True, metavar="ACTION")
    p = leaf(isub, "list", _incidents_list, "list incidents (most recently seen first)", paging)
    p.add_argument("--state", choices=("open", "resolved"))
    p = leaf(isub, "show", _incidents_show, "show one incident and its timeline")
    p.add_argument("id")
    p = leaf(isub, "ack", _incidents_ack, "acknowledge an incident (who and why)", control)
    p.add_argument("id")
