"""``stella orchestrator events list|tail`` and ``audit list|export``: the event history, the
live feed (Server-Sent Events) and the audit log of operator actions.

``events tail`` reads ``/events/stream``. Each event carries its seq; when the stream breaks
(the gateway restarts, a slow reader is cut, the network drops) it reconnects with
``Last-Event-ID: <last seq>`` after a capped, jittered backoff, so no event is lost or
repeated. Without ``--follow`` it stops once it has caught up with the head the gateway
reported when it connected; on exit it prints the last seq, which ``--after-seq`` resumes from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

from stella_orchestrator._cli_base import (
    EXIT_OK,
    EXIT_SERVER,
    EXIT_USAGE,
    CliError,
    Commands,
    Output,
    list_items,
    list_of,
    progress_bar,
)
from stella_orchestrator._cli_output import cell, dump_yaml, pick
from stella_orchestrator._rest import RestClient, RestError

EVENT_COLUMNS = (
    ("SEQ", "seq"),
    ("AT (UTC)", "occurred_at"),
    ("TYPE", "type"),
    ("JOB", "job.id"),
    ("STATE", "job.state"),
    ("RUN", "run_id"),
    ("SOURCE", "source_id"),
)
# Column widths of the streamed table (rows print as they arrive, so no width is measured):
# seq, RFC 3339 with milliseconds, the longest event type, then ids (36) and a state.
EVENT_WIDTHS = (10, 24, 20, 36, 10, 36, 36)
AUDIT_COLUMNS = (
    ("SEQ", "seq"),
    ("AT (UTC)", "occurred_at"),
    ("ACTOR", "actor.subject"),
    ("ACTION", "action"),
    ("TARGET", "target"),
    ("REASON", "reason"),
    ("TICKET", "ticket"),
)
RECONNECT_BASE_S = 0.5
RECONNECT_MAX_S = 15.0
RECONNECT_ATTEMPTS = 8


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "run_id": args.run,
        "source_id": args.source,
        "job_id": args.job,
        "type": args.type,
    }


def _list(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    path = "/events"
    return list_items(
        args, client, out, path, EVENT_COLUMNS, after_seq=args.after_seq, **_filters(args)
    )


def _print_event(out: Output, event: dict[str, Any]) -> None:
    """One event as it arrives: a JSON line, a YAML document, or a row of fixed fields."""
    if out.mode == "json":
        out.out.file.write(json.dumps(event, sort_keys=True, separators=(",", ":")) + "\n")
    elif out.mode == "yaml":
        out.out.file.write("---\n" + dump_yaml(event))
    else:
        cells = (cell(pick(event, key)) for _, key in EVENT_COLUMNS)
        row = " ".join(text.ljust(width) for text, width in zip(cells, EVENT_WIDTHS, strict=True))
        out.out.file.write(row.rstrip() + "\n")
    out.out.file.flush()


def _tail(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    last: int | None = args.after_seq
    seen, failures = 0, 0
    if out.mode == "table":
        headers = zip(EVENT_COLUMNS, EVENT_WIDTHS, strict=True)
        out.note(" ".join(header.ljust(width) for (header, _), width in headers).rstrip())
    try:
        while True:
            head = None
            try:
                for kind, value in client.events(
                    "/events/stream", last_event_id=last, **_filters(args)
                ):
                    if kind == "event":
                        _print_event(out, value)
                        last, seen, failures = value["seq"], seen + 1, 0
                        if args.limit and seen >= args.limit:
                            return EXIT_OK
                    elif kind == "head":
                        head = value
                        last = value if last is None else last  # new only: resume from here
                    elif not args.follow:
                        return EXIT_OK  # a keep-alive: everything up to the head was sent
                    if not args.follow and head is not None and last is not None and last >= head:
                        return EXIT_OK
            except RestError as exc:
                if exc.status != 0:
                    raise
                failures += 1
                if failures > RECONNECT_ATTEMPTS:
                    raise CliError(EXIT_SERVER, f"{exc} ({RECONNECT_ATTEMPTS} reconnects)") from exc
            # The stream ended or broke: reconnect from the last seq.
            delay = min(RECONNECT_MAX_S, RECONNECT_BASE_S * 2**failures)
            out.note(f"stream ended; resuming after seq {last} in {delay:.1f} s")
            time.sleep(delay * random.uniform(0.5, 1.0))
    except KeyboardInterrupt:
        return EXIT_OK  # Ctrl-C is how a --follow ends
    finally:
        if last is not None:
            out.note(f"last seq {last} (resume with --after-seq {last})")


def _audit_export(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    """Every audit entry (all pages, seq order) to a file as JSON Lines; prints the count and
    the file's sha256."""
    target = Path(args.file)
    if target.exists() and not args.force:
        raise CliError(EXIT_USAGE, f"{target} exists (--force overwrites it)")
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    count = 0
    try:
        with partial.open("wb") as sink, progress_bar(out, spinner=True) as progress:
            task = progress.add_task("exporting audit entries", total=None)
            pages = client.pages(
                "/audit", follow=True, page_size=500, actor=args.actor, action=args.action
            )
            for page in pages:
                for entry in page["items"]:
                    line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
                    sink.write(line.encode())
                    digest.update(line.encode())
                    count += 1
                progress.update(task, completed=count)
        partial.replace(target)  # complete or nothing: a broken export leaves no file
    except OSError as exc:
        raise CliError(EXIT_USAGE, f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    result = {"file": str(target), "entries": count, "sha256": digest.hexdigest()}
    out.show(
        result,
        summary=lambda r: f"wrote {r['entries']} entries to {r['file']} (sha256 {r['sha256']})",
    )
    return EXIT_OK


def _event_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", default="", help="run id")
    p.add_argument("--source", default="", help="source id")
    p.add_argument("--job", default="", help="job id")
    p.add_argument(
        "--type", action="append", default=[], help="event type, or a prefix ending in '.'"
    )


def register(c: Commands) -> None:
    sub = c.group("events", "events: the history and the live feed")
    p = c.leaf(sub, "list", _list, "past events in seq order", c.paging, ops=["GET /events"])
    p.add_argument("--after-seq", type=int, default=0, help="only events after this seq")
    _event_filters(p)
    p = c.leaf(
        sub,
        "tail",
        _tail,
        "the live feed (SSE); resumes by itself from the last seq",
        ops=["GET /events/stream"],
    )
    p.add_argument(
        "--after-seq", type=int, default=None, help="start after this seq (default: new only)"
    )
    p.add_argument("--follow", "-F", action="store_true", help="keep following (Ctrl-C ends)")
    p.add_argument("--limit", type=int, default=0, help="stop after this many events")
    _event_filters(p)

    sub = c.group("audit", "the audit log of operator actions; bundles offline")
    p = c.leaf(
        sub,
        "list",
        list_of("/audit", AUDIT_COLUMNS, actor="actor", action="action"),
        "list audit entries",
        c.paging,
        ops=["GET /audit"],
    )
    p.add_argument("--actor", default="")
    p.add_argument("--action", default="")
    p = c.leaf(
        sub,
        "export",
        _audit_export,
        "every audit entry to a file (JSON Lines), with its sha256",
        ops=["GET /audit"],
    )
    p.add_argument("-f", "--file", required=True, help="where to write")
    p.add_argument("--force", action="store_true", help="overwrite the file")
    p.add_argument("--actor", default="")
    p.add_argument("--action", default="")
