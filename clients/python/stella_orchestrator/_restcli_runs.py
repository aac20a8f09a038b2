"""``stella orchestrator runs …``: create a run from a DAG file, list, show with its DAG,
watch with a progress bar, cancel, prioritize and resume."""

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
    watch,
)
from stella_orchestrator._cli_dagfile import RUN_SCHEMA, load
from stella_orchestrator._rest import RestClient

RUN_STATES = ("pending", "running", "succeeded", "failed", "canceled")
RUN_COLUMNS = (
    ("ID", "id"),
    ("NAME", "name"),
    ("STATE", "state"),
    ("JOBS", "job_counts"),
    ("CREATED (UTC)", "created_at"),
    ("FINISHED (UTC)", "finished_at"),
)
RUN_FIELDS = ("id", "name", "state", "project", "job_counts", "created_at", "finished_at")
JOB_COLUMNS = (
    ("ID", "id"),
    ("KEY", "key"),
    ("TYPE", "job_type"),
    ("STATE", "state"),
    ("REASON", "reason"),
    ("ATTEMPT", "attempt"),
    ("UPDATED (UTC)", "updated_at"),
)


def _dag_rows(dag: dict[str, Any]) -> list[dict[str, Any]]:
    parents: dict[str, list[str]] = {}
    keys = {j["id"]: j["key"] or j["id"] for j in dag["jobs"]}
    for edge in dag["edges"]:
        parents.setdefault(edge["child_job_id"], []).append(
            keys.get(edge["parent_job_id"], edge["parent_job_id"])
        )
    return [{**j, "after": ", ".join(parents.get(j["id"], []))} for j in dag["jobs"]]


def _show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    if args.no_dag:
        out.show(client.get(f"/runs/{args.id}"), fields=RUN_FIELDS)
        return EXIT_OK

    def render(dag: dict[str, Any]) -> None:
        out.record(dag["run"], RUN_FIELDS)
        columns = (*JOB_COLUMNS[:5], ("AFTER", "after"))
        out.table(_dag_rows(dag), columns, title="DAG (topological order)")

    out.show(client.get(f"/runs/{args.id}/dag"), render=render)
    return EXIT_OK


def _create(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    body = load(args.file, RUN_SCHEMA)
    for field in ("name", "source_id", "project"):
        if getattr(args, field):
            body[field] = getattr(args, field)
    if args.validate_only:
        out.note(f"{args.file}: valid ({len(body['jobs'])} jobs); nothing sent")
        return EXIT_OK
    created = client.request(
        "POST", "/runs", json=body, idempotency_key=args.idempotency_key or None
    )
    run = created["run"]
    out.show(
        created,
        summary=lambda r: (
            f"run {run['id']} {run['state']}: {len(r['jobs'])} job(s)"
            + (" (existing: same idempotency key)" if r.get("existing") else "")
        ),
    )
    if args.wait:
        return _watch_run(run["id"], client, out, args, quiet=True)
    return EXIT_OK


def _watch_run(
    run_id: str, client: RestClient, out: Output, args: argparse.Namespace, *, quiet: bool
) -> int:
    def step(run: dict[str, Any]) -> tuple[str, int | None, int, bool]:
        counts = run["job_counts"]
        finished = sum(counts.get(s, 0) for s in ("succeeded", "dead", "canceled"))
        total = sum(counts.values()) or None
        return (
            f"{run['name'] or run['id']} {run['state']}",
            total,
            finished,
            (run["state"] in RUN_TERMINAL),
        )

    run = watch(
        out,
        lambda: client.get(f"/runs/{run_id}"),
        step,
        interval_s=args.interval,
        timeout_s=args.timeout,
    )
    if not quiet:
        out.show(run, fields=RUN_FIELDS)
    else:
        out.note(f"run {run_id} {run['state']}")
    return EXIT_OK if run["state"] == "succeeded" else EXIT_FAILED


def _watch(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    """Progress bar of a run until it is terminal (exit 1 unless it succeeded)."""
    return _watch_run(args.id, client, out, args, quiet=False)


def _cancel(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    result = client.request("POST", f"/runs/{args.id}/cancel", **control(args))
    out.show(
        result,
        summary=lambda r: (
            f"run {args.id} {r['run']['state']}: {r['canceled_job_count']} job(s) canceled"
        ),
    )
    return EXIT_OK


def _prioritize(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    path = f"/runs/{args.id}/prioritize"
    result = client.request("POST", path, json={"priority": args.priority}, **control(args))
    out.show(
        result,
        summary=lambda r: f"run {args.id}: {r['changed_jobs']} waiting job(s) now {args.priority}",
    )
    return EXIT_OK


def _resume(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    """Resume a failed run: its dead jobs re-run, the jobs they canceled come back."""
    result = client.request("POST", f"/runs/{args.id}/resume", **control(args))
    out.show(
        result,
        summary=lambda r: (
            f"run {args.id} {r['run']['state']}: {r['retried_job_count']} dead job(s) "
            f"retried, {r['revived_job_count']} canceled job(s) revived"
        ),
    )
    if args.wait:
        return _watch_run(args.id, client, out, args, quiet=True)
    return EXIT_OK


def register(c: Commands) -> None:
    sub = c.group("runs", "runs: create from a DAG file, list, show, watch, cancel, resume")
    p = c.leaf(
        sub,
        "list",
        list_of("/runs", RUN_COLUMNS, state="state", source_id="source", project="project"),
        "list runs",
        c.paging,
        ops=["GET /runs"],
    )
    p.add_argument("--state", action="append", choices=RUN_STATES, default=[])
    p.add_argument("--source", default="", help="source id")
    p.add_argument("--project", default="")
    p = c.leaf(
        sub,
        "show",
        _show,
        "show a run and its DAG",
        ops=["GET /runs/{run_id}/dag", "GET /runs/{run_id}"],
        item="run_id",
    )
    p.add_argument("--no-dag", action="store_true", help="the run only (job counts)")
    p = c.leaf(
        sub,
        "create",
        _create,
        "create a run and its DAG from a YAML or JSON file (the body of POST /runs)",
        ops=["POST /runs"],
    )
    p.add_argument("-f", "--file", required=True, help="YAML or JSON file ('-': stdin)")
    p.add_argument("--name", default="", help="overrides the file's name")
    p.add_argument("--source-id", default="", help="overrides the file's source_id")
    p.add_argument("--project", default="", help="overrides the file's project")
    p.add_argument("--idempotency-key", default="", help="a repeat returns the first run")
    p.add_argument("--validate-only", action="store_true", help="check the file, send nothing")
    p.add_argument("--wait", action="store_true", help="then watch it until terminal")
    add_watch_options(p)
    p = c.leaf(
        sub,
        "watch",
        _watch,
        "progress bar until the run is terminal",
        ops=["GET /runs/{run_id}"],
        item="run_id",
    )
    add_watch_options(p)
    p = c.leaf(
        sub,
        "cancel",
        _cancel,
        "cancel every non-terminal job of a run",
        c.control,
        ops=["POST /runs/{run_id}/cancel"],
        item="run_id",
    )
    p = c.leaf(
        sub,
        "prioritize",
        _prioritize,
        "change the priority of a run's waiting jobs",
        c.control,
        ops=["POST /runs/{run_id}/prioritize"],
        item="run_id",
    )
    p.add_argument("--priority", type=int, required=True, help="-1000..1000, higher first")
    p = c.leaf(
        sub,
        "resume",
        _resume,
        "resume a failed run: re-run its dead jobs and the jobs their failure canceled",
        c.control,
        ops=["POST /runs/{run_id}/resume"],
        item="run_id",
    )
    p.add_argument("--wait", action="store_true", help="then watch it until terminal")
    add_watch_options(p)
