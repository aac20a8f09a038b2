"""``stella orchestrator sources|runs|jobs|throttle|backfill|deadletter|incidents|audit …``: the
operator CLI over the gateway's REST API (the same API the Console uses, so both stay at
parity).

Every command takes ``--api-url``, ``--token``, ``--tenant`` (or ``STELLA_ORCH_API_URL``,
``STELLA_ORCH_TOKEN``, ``STELLA_ORCH_TENANT``) and ``--output table|json``
(``STELLA_ORCH_OUTPUT``). List commands page with ``--page-size``/``--page-token`` or follow
every page with ``--all``. Control actions need ``--reason`` (audited) and accept ``--ticket``.
Exit codes: 0 ok, 1 error, 2 usage (including a request the gateway refused as invalid),
3 not found or denied (HTTP 401, 403, 404).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stella_orchestrator._rest import RestClient, RestError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3
DEFAULT_API_URL = "http://127.0.0.1:8080"
RUN_TERMINAL = {"succeeded", "failed", "canceled"}
JOB_STATES = ("pending", "ready", "leased", "succeeded", "dead", "canceled")
RUN_STATES = ("pending", "running", "succeeded", "failed", "canceled")
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

Handler = Callable[[argparse.Namespace, RestClient, "Output"], int]


class Output:
    """Prints tables (stdout) or JSON, and messages (stderr)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        # Off a terminal (pipes, files, tests) tables get room instead of 80 columns.
        width = None if sys.stdout.isatty() else 240
        self.out = Console(highlight=False, soft_wrap=True, width=width)
        self.err = Console(stderr=True, highlight=False)

    def json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")

    def table(
        self, rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]], title: str = ""
    ) -> None:
        table = Table(title=title or None, show_lines=False)
        for header, _ in columns:
            table.add_column(header, overflow="fold")
        count = 0
        for row in rows:
            table.add_row(*(_cell(_pick(row, key)) for _, key in columns))
            count += 1
        if count:
            self.out.print(table)
        else:
            self.err.print("no items")

    def record(self, value: dict[str, Any], keys: Sequence[str] | None = None) -> None:
        if self.mode == "json":
            self.json(value)
            return
        table = Table(show_header=False, box=None)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for key in keys or sorted(value):
            table.add_row(key, _cell(_pick(value, key)))
        self.out.print(table)


def _pick(row: dict[str, Any], key: str) -> Any:
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True) if value else "-"
    return str(value)


def _list(
    args: argparse.Namespace,
    client: RestClient,
    out: Output,
    path: str,
    columns: Sequence[tuple[str, str]],
    **params: Any,
) -> int:
    items: list[dict[str, Any]] = []
    next_token = ""
    for page in client.pages(
        path,
        follow=args.all,
        page_size=args.page_size,
        page_token=args.page_token,
        **params,
    ):
        items += page["items"]
        next_token = page.get("next_page_token", "")
    if out.mode == "json":
        out.json({"items": items, "next_page_token": "" if args.all else next_token})
        return EXIT_OK
    out.table(items, columns)
    if next_token and not args.all:
        out.err.print(f"more: --page-token {next_token}  (or --all)")
    return EXIT_OK


# ------------------------------------------------------------------------- sources

SOURCE_COLUMNS = (
    ("ID", "id"),
    ("NAME", "name"),
    ("TYPE", "source_type"),
    ("HOST", "host"),
    ("ENABLED", "enabled"),
    ("PAUSED", "paused"),
    ("PAUSE REASON", "paused_reason"),
)


def _sources_list(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    return _list(
        args, client, out, "/sources", SOURCE_COLUMNS, source_type=args.type, enabled=args.enabled
    )


def _sources_show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    out.record(client.get(f"/sources/{args.id}"))
    return EXIT_OK


def _sources_create(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body = {
        "name": args.name,
        "source_type": args.type,
        "host": args.host,
        "base_url": args.base_url,
    }
    out.record(client.request("POST", "/sources", json=body, idempotency_key=args.idempotency_key))
    return EXIT_OK


def _sources_pause(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    action = "pause" if args.source_command == "pause" else "resume"
    source = client.request(
        "POST", f"/sources/{args.id}/{action}", reason=args.reason, ticket=args.ticket
    )
    out.record(source, ["id", "name", "paused", "paused_reason", "paused_ticket", "version"])
    return EXIT_OK


# ------------------------------------------------------------------------- runs

RUN_COLUMNS = (
    ("ID", "id"),
    ("NAME", "name"),
    ("STATE", "state"),
    ("JOBS", "job_counts"),
    ("CREATED (UTC)", "created_at"),
    ("FINISHED (UTC)", "finished_at"),
)
JOB_COLUMNS = (
    ("ID", "id"),
    ("KEY", "key"),
    ("TYPE", "job_type"),
    ("STATE", "state"),
    ("REASON", "reason"),
    ("ATTEMPT", "attempt"),
    ("UPDATED (UTC)", "updated_at"),
)


def _runs_list(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    return _list(args, client, out, "/runs", RUN_COLUMNS, state=args.state, source_id=args.source)


def _runs_show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    dag = client.get(f"/runs/{args.id}/dag")
    if out.mode == "json":
        out.json(dag)
        return EXIT_OK
    out.record(dag["run"], ["id", "name", "state", "job_counts", "created_at", "finished_at"])
    parents: dict[str, list[str]] = {}
    keys = {j["id"]: j["key"] or j["id"] for j in dag["jobs"]}
    for edge in dag["edges"]:
        parents.setdefault(edge["child_job_id"], []).append(
            keys.get(edge["parent_job_id"], edge["parent_job_id"])
        )
    rows = [{**j, "after": ", ".join(parents.get(j["id"], []))} for j in dag["jobs"]]
    out.table(rows, (*JOB_COLUMNS[:5], ("AFTER", "after")), title="DAG (topological order)")
    return EXIT_OK


def _control_post(
    args: argparse.Namespace,
    client: RestClient,
    out: Output,
    path: str,
    summary: Callable[[dict[str, Any]], str],
) -> int:
    """POSTs a control action with the operator's reason and ticket; prints the answer
    (``-o json``) or its one-line summary."""
    result = client.request("POST", path, reason=args.reason, ticket=args.ticket)
    if out.mode == "json":
        out.json(result)
    else:
        out.out.print(summary(result))
    return EXIT_OK


def _runs_cancel(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    return _control_post(
        args,
        client,
        out,
        f"/runs/{args.id}/cancel",
        lambda r: f"run {args.id} {r['run']['state']}: {r['canceled_job_count']} job(s) canceled",
    )


def _runs_resume(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    """Resume a failed run: its dead jobs re-run, the jobs they canceled come back."""
    return _control_post(
        args,
        client,
        out,
        f"/runs/{args.id}/resume",
        lambda r: (
            f"run {args.id} {r['run']['state']}: {r['retried_job_count']} dead job(s) "
            f"retried, {r['revived_job_count']} canceled job(s) revived"
        ),
    )


def _runs_watch(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    """Progress bar of a run until it is terminal (or --timeout)."""
    deadline = time.monotonic() + args.timeout
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out.err,
        transient=out.mode == "json",
    ) as progress:
        task = progress.add_task("run", total=None)
        while True:
            run = client.get(f"/runs/{args.id}")
            counts = run["job_counts"]
            total = sum(counts.values())
            finished = sum(counts.get(s, 0) for s in ("succeeded", "dead", "canceled"))
            progress.update(
                task, total=total, completed=finished, description=f"{run['name']} {run['state']}"
            )
            if run["state"] in RUN_TERMINAL:
                break
            if time.monotonic() > deadline:
                out.err.print(f"timeout: run still {run['state']}")
                return EXIT_ERROR
            time.sleep(args.interval)
    if out.mode == "json":
        out.json(run)
    return EXIT_OK if run["state"] == "succeeded" else EXIT_ERROR


# ------------------------------------------------------------------------- jobs


def _jobs_list(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    return _list(
        args,
        client,
        out,
        "/jobs",
        JOB_COLUMNS,
        state=args.state,
        run_id=args.run,
        job_type=args.type,
        source_id=args.source,
    )


def _jobs_show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    job = client.get(f"/jobs/{args.id}")
    history = client.get(f"/jobs/{args.id}/history", page_size=500)["items"]
    if out.mode == "json":
        out.json({"job": job, "history": history})
        return EXIT_OK
    out.record(
        job,
        [
            "id",
            "key",
            "job_type",
            "state",
            "reason",
            "attempt",
            "run_id",
            "source_id",
            "progress",
            "last_error",
            "created_at",
            "finished_at",
        ],
    )
    out.table(
        history,
        (
            ("SEQ", "seq"),
            ("EVENT", "type"),
            ("ATTEMPT", "job.attempt"),
            ("REASON", "job.reason"),
            ("ACTOR", "actor.subject"),
            ("AT (UTC)", "occurred_at"),
        ),
        title="history",
    )
    return EXIT_OK


def _jobs_control(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    job = client.request(
        "POST", f"/jobs/{args.id}/{args.job_command}", reason=args.reason, ticket=args.ticket
    )
    out.record(job, ["id", "state", "reason", "attempt"])
    return EXIT_OK


# ------------------------------------------------------------------------- throttle

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


def _throttle_list(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    return _list(args, client, out, "/throttles/buckets", BUCKET_COLUMNS)


def _throttle_set(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    result = client.request(
        "POST",
        f"/sources/{args.source_id}/throttle",
        json={"refill_per_second": args.rate, "duration_s": args.duration},
        reason=args.reason,
        ticket=args.ticket,
    )
    if out.mode == "json":
        out.json(result)
    else:
        out.table([result["bucket"]], BUCKET_COLUMNS)
    return EXIT_OK


def _throttle_clear(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    bucket = client.request(
        "DELETE", f"/sources/{args.source_id}/throttle", reason=args.reason, ticket=args.ticket
    )
    if out.mode == "json":
        out.json(bucket)
    else:
        out.table([bucket], BUCKET_COLUMNS)
    return EXIT_OK


# ------------------------------------------------------------------------- backfill

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


def _backfill_list(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    return _list(args, client, out, "/backfills", BACKFILL_COLUMNS, source_id=args.source)


def _backfill_show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    out.record(client.get(f"/backfills/{args.id}"))
    return EXIT_OK


def _backfill_create(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body = {
        "source_id": args.source,
        "job_type": args.job_type,
        "start": args.start,
        "end": args.end,
        "window_size_s": args.window,
        "dry_run": args.dry_run,
    }
    if args.priority is not None:
        body["priority"] = args.priority
    result = client.request("POST", "/backfills", json=body, reason=args.reason, ticket=args.ticket)
    if out.mode == "json":
        out.json(result)
    elif result.get("preview") and args.dry_run:
        out.record(
            result["preview"],
            [
                "window_count",
                "job_count",
                "suppressed_window_count",
                "estimated_duration",
                "limited_by",
                "overlapping_backfill_ids",
            ],
        )
    else:
        backfill = result["backfill"]
        out.table([backfill], BACKFILL_COLUMNS)
        if result.get("existing"):
            out.err.print("an identical backfill exists; nothing new was created")
    return EXIT_OK


def _backfill_cancel(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    backfill = client.request(
        "POST", f"/backfills/{args.id}/cancel", reason=args.reason, ticket=args.ticket
    )
    out.record(backfill, ["id", "state", "job_count", "succeeded_job_count"])
    return EXIT_OK


def _backfill_watch(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    """Progress bar of a backfill's window jobs until it is terminal."""
    deadline = time.monotonic() + args.timeout
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out.err,
        transient=out.mode == "json",
    ) as progress:
        task = progress.add_task("backfill", total=None)
        while True:
            backfill = client.get(f"/backfills/{args.id}")
            progress.update(
                task,
                total=backfill["job_count"],
                completed=backfill["succeeded_job_count"],
                description=f"backfill {backfill['state']}",
            )
            if backfill["state"] in RUN_TERMINAL:
                break
            if time.monotonic() > deadline:
                out.err.print(f"timeout: backfill still {backfill['state']}")
                return EXIT_ERROR
            time.sleep(args.interval)
    if out.mode == "json":
        out.json(backfill)
    return EXIT_OK if backfill["state"] == "succeeded" else EXIT_ERROR


# ------------------------------------------------------------------------- audit


def _audit_list(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    return _list(
        args,
        client,
        out,
        "/audit",
        (
            ("SEQ", "seq"),
            ("AT (UTC)", "occurred_at"),
            ("ACTOR", "actor.subject"),
            ("ACTION", "action"),
            ("TARGET", "target"),
            ("REASON", "reason"),
            ("TICKET", "ticket"),
        ),
        actor=args.actor,
        action=args.action,
    )


# ------------------------------------------------------------------------- wiring


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument(
        "--api-url",
        default=os.environ.get("STELLA_ORCH_API_URL", DEFAULT_API_URL),
        help="gateway URL (env STELLA_ORCH_API_URL; default %(default)s)",
    )
    group.add_argument(
        "--token",
        default=os.environ.get("STELLA_ORCH_TOKEN", ""),
        help="bearer token (env STELLA_ORCH_TOKEN)",
    )
    group.add_argument(
        "--tenant",
        default=os.environ.get("STELLA_ORCH_TENANT", ""),
        help="tenant, when the token names several (env STELLA_ORCH_TENANT)",
    )
    group.add_argument(
        "--output",
        "-o",
        choices=("table", "json"),
        default=os.environ.get("STELLA_ORCH_OUTPUT", "table"),
        help="output format (env STELLA_ORCH_OUTPUT; default %(default)s)",
    )
    return common


def _paging() -> argparse.ArgumentParser:
    paging = argparse.ArgumentParser(add_help=False)
    paging.add_argument("--page-size", type=int, default=50, help="items per page (1-500)")
    paging.add_argument("--page-token", default="", help="next_page_token of the last page")
    paging.add_argument("--all", action="store_true", help="follow every page")
    return paging


def _control() -> argparse.ArgumentParser:
    control = argparse.ArgumentParser(add_help=False)
    control.add_argument("--reason", required=True, help="why (audited; at most 256 chars)")
    control.add_argument("--ticket", default="", help="change or incident ticket")
    return control


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        out = Output(args.output)
        if not args.token:
            out.err.print("error: no token: pass --token or set STELLA_ORCH_TOKEN")
            return EXIT_USAGE
        try:
            with RestClient(args.api_url, args.token, args.tenant or None) as client:
                return handler(args, client, out)
        except RestError as exc:
            out.err.print(f"error: {exc}")
            for err in exc.problem.get("errors") or []:
                out.err.print(f"  {err.get('field')}: {err.get('description')}")
            if exc.status in (401, 403, 404):
                return EXIT_NOT_FOUND
            if exc.status in (400, 422):
                return EXIT_USAGE
            return EXIT_ERROR

    return run


def register(commands: Any) -> None:
    """Adds sources, runs, jobs, throttle, backfill, deadletter, incidents and audit to
    ``stella orchestrator``."""
    common, paging, control = _common(), _paging(), _control()

    def leaf(sub: Any, name: str, handler: Handler, help_: str, *parents: Any) -> Any:
        parser = sub.add_parser(name, help=help_, description=help_, parents=[common, *parents])
        parser.set_defaults(handler=_run(handler))
        return parser

    sources = commands.add_parser("sources", help="list, show, create, pause and resume sources")
    ssub = sources.add_subparsers(dest="source_command", required=True, metavar="ACTION")
    p = leaf(ssub, "list", _sources_list, "list sources", paging)
    p.add_argument("--type", default="", help="only this source type")
    p.add_argument("--enabled", choices=("true", "false"), default=None)
    p = leaf(ssub, "show", _sources_show, "show one source")
    p.add_argument("id")
    p = leaf(ssub, "create", _sources_create, "register a source")
    p.add_argument("--name", required=True)
    p.add_argument("--type", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--base-url", default="")
    p.add_argument("--idempotency-key", default=None)
    for name in ("pause", "resume"):
        p = leaf(ssub, name, _sources_pause, f"{name} a source", control)
        p.add_argument("id")

    runs = commands.add_parser("runs", help="list, show (with DAG), watch, cancel and resume runs")
    rsub = runs.add_subparsers(dest="run_command", required=True, metavar="ACTION")
    p = leaf(rsub, "list", _runs_list, "list runs", paging)
    p.add_argument("--state", action="append", choices=RUN_STATES, default=[])
    p.add_argument("--source", default="")
    p = leaf(rsub, "show", _runs_show, "show a run and its DAG")
    p.add_argument("id")
    p = leaf(rsub, "watch", _runs_watch, "progress bar until the run is terminal")
    p.add_argument("id")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=3600.0)
    p = leaf(rsub, "cancel", _runs_cancel, "cancel every non-terminal job of a run", control)
    p.add_argument("id")
    p = leaf(
        rsub,
        "resume",
        _runs_resume,
        "resume a failed run: re-run its dead jobs and the jobs their failure canceled",
        control,
    )
    p.add_argument("id")

    jobs = commands.add_parser("jobs", help="list, show, retry and cancel jobs")
    jsub = jobs.add_subparsers(dest="job_command", required=True, metavar="ACTION")
    p = leaf(jsub, "list", _jobs_list, "list jobs", paging)
    p.add_argument("--state", action="append", choices=JOB_STATES, default=[])
    p.add_argument("--run", default="")
    p.add_argument("--type", default="")
    p.add_argument("--source", default="")
    p = leaf(jsub, "show", _jobs_show, "show a job and its history")
    p.add_argument("id")
    for name, text in (("retry", "move a dead job back to ready"), ("cancel", "cancel a job")):
        p = leaf(jsub, name, _jobs_control, text, control)
        p.add_argument("id")

    throttle = commands.add_parser("throttle", help="token buckets and operator overrides")
    tsub = throttle.add_subparsers(dest="throttle_command", required=True, metavar="ACTION")
    leaf(tsub, "list", _throttle_list, "list token buckets", paging)
    p = leaf(tsub, "set", _throttle_set, "pin a source's rate for a while (0 pauses)", control)
    p.add_argument("source_id")
    p.add_argument("--rate", type=float, required=True, help="tokens per second")
    p.add_argument("--duration", type=float, default=3600.0, help="seconds (default 3600)")
    p = leaf(tsub, "clear", _throttle_clear, "remove a source's override", control)
    p.add_argument("source_id")

    # dead letters and incidents: _restcli_ops.py (imported here: it builds on this module)
    from stella_orchestrator._restcli_ops import register_operations

    register_operations(commands, leaf, paging, control)
    from stella_orchestrator._restcli_webhooks import register_webhooks

    register_webhooks(commands, leaf, paging, control)

    backfill = commands.add_parser("backfill", help="re-process past event-time ranges")
    bsub = backfill.add_subparsers(dest="backfill_command", required=True, metavar="ACTION")
    p = leaf(bsub, "list", _backfill_list, "list backfills", paging)
    p.add_argument("--source", default="")
    p = leaf(bsub, "show", _backfill_show, "show one backfill")
    p.add_argument("id")
    p = leaf(
        bsub,
        "create",
        _backfill_create,
        "backfill a range of a source (scope orch:backfill; --ticket required)",
        control,
    )
    p.add_argument("--source", required=True, help="source id")
    p.add_argument("--job-type", required=True)
    p.add_argument("--start", required=True, help="RFC 3339 UTC, inclusive")
    p.add_argument("--end", required=True, help="RFC 3339 UTC, exclusive")
    p.add_argument("--window", type=float, default=3600.0, help="window length in seconds")
    p.add_argument("--priority", type=int, default=None)
    p.add_argument("--dry-run", action="store_true", help="preview only")
    p = leaf(bsub, "cancel", _backfill_cancel, "cancel a backfill's unfinished jobs", control)
    p.add_argument("id")
    p = leaf(bsub, "watch", _backfill_watch, "progress bar until the backfill is terminal")
    p.add_argument("id")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=3600.0)

    # `audit` is shared with the audit service's offline commands (verify, replay, keygen),
    # which may have registered it first: join its subcommands rather than clash.
    audit = commands.choices.get("audit") or commands.add_parser(
        "audit", help="the audit log of operator actions; bundles offline"
    )
    asub = _subcommands(audit) or audit.add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    p = leaf(asub, "list", _audit_list, "list audit entries", paging)
    p.add_argument("--actor", default="")
    p.add_argument("--action", default="")


def _subcommands(parser: argparse.ArgumentParser) -> Any:
    """The parser's subcommand action if it has one already (None otherwise)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None
