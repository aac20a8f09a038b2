"""``stella orchestrator jobs …``: submit (flags or a file), list, show with history,
history, artifacts, watch, and the controls: cancel, retry, prioritize, replay, and pause or
resume leasing for the tenant or one job type."""

from __future__ import annotations

import argparse
import json
from typing import Any

from stella_orchestrator._cli_base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    JOB_TERMINAL,
    CliError,
    Commands,
    Output,
    add_watch_options,
    control,
    list_of,
    parse_labels,
    watch,
)
from stella_orchestrator._cli_dagfile import JOB_SCHEMA, check, load
from stella_orchestrator._rest import RestClient
from stella_orchestrator._restcli_runs import JOB_COLUMNS

JOB_STATES = ("pending", "ready", "leased", "succeeded", "dead", "canceled")
JOB_FIELDS = (
    "id",
    "key",
    "job_type",
    "state",
    "reason",
    "priority",
    "attempt",
    "run_id",
    "source_id",
    "progress",
    "last_error",
    "replay_of",
    "created_at",
    "finished_at",
)
HISTORY_COLUMNS = (
    ("SEQ", "seq"),
    ("EVENT", "type"),
    ("ATTEMPT", "job.attempt"),
    ("REASON", "job.reason"),
    ("ACTOR", "actor.subject"),
    ("AT (UTC)", "occurred_at"),
)
ARTIFACT_COLUMNS = (
    ("ID", "id"),
    ("NAME", "name"),
    ("MEDIA TYPE", "media_type"),
    ("BYTES", "size_bytes"),
    ("DIGEST", "digest"),
    ("URI", "uri"),
    ("CREATED (UTC)", "created_at"),
)


def _show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    job = client.get(f"/jobs/{args.id}")
    history = client.get(f"/jobs/{args.id}/history", page_size=500)["items"]

    def render(value: dict[str, Any]) -> None:
        out.record(value["job"], JOB_FIELDS)
        out.table(value["history"], HISTORY_COLUMNS, title="history")

    out.show({"job": job, "history": history}, render=render)
    return EXIT_OK


def _spec_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    try:
        payload = json.loads(args.payload) if args.payload else {}
    except json.JSONDecodeError as exc:
        raise CliError(EXIT_USAGE, f"--payload: not JSON: {exc.msg}") from None
    spec: dict[str, Any] = {
        "job_type": args.type,
        "source_id": args.source,
        "project": args.project,
        "priority": args.priority,
        "payload": payload,
        "key": args.key,
        "idempotency_key": args.idempotency_key,
        "correlation_id": args.correlation_id,
        "max_attempts": args.max_attempts,
        "labels": parse_labels(args.label),
    }
    spec = {k: v for k, v in spec.items() if v not in ("", None, {})}
    errors = check(spec, JOB_SCHEMA, "job")
    if errors:
        raise CliError(EXIT_USAGE, "the job is not valid", errors)
    return spec


def _submit(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    if args.file:
        spec = load(args.file, JOB_SCHEMA)
    elif args.type:
        spec = _spec_from_flags(args)
    else:
        raise CliError(EXIT_USAGE, "give the job as --type … or as a file (-f job.yaml)")
    body = {"job": spec, "run_id": args.run}
    # The job's idempotency key (in the spec) is the scheduler's; the same key is sent as the
    # request's Idempotency-Key so a retried POST answers the first job too.
    submitted = client.request(
        "POST", "/jobs", json=body, idempotency_key=spec.get("idempotency_key") or None
    )
    job = submitted["job"]
    out.show(
        submitted,
        summary=lambda r: (
            f"job {job['id']} {job['state']}"
            + (" (existing: same idempotency key)" if r.get("existing") else "")
        ),
    )
    if args.wait:
        return _watch_job(job["id"], client, out, args, quiet=True)
    return EXIT_OK


def _watch_job(
    job_id: str, client: RestClient, out: Output, args: argparse.Namespace, *, quiet: bool
) -> int:
    def step(job: dict[str, Any]) -> tuple[str, int | None, int, bool]:
        # The worker reports a percent (and a message); the bar counts to 100.
        progress = job.get("progress") or {}
        done = job["state"] in JOB_TERMINAL
        percent = 100 if done else int(progress.get("percent") or 0)
        message = f" {progress['message']}" if progress.get("message") and not done else ""
        return f"{job['job_type']} {job['state']}{message}", 100, percent, done

    job = watch(
        out,
        lambda: client.get(f"/jobs/{job_id}"),
        step,
        interval_s=args.interval,
        timeout_s=args.timeout,
    )
    if quiet:
        out.note(f"job {job_id} {job['state']}")
    else:
        out.show(job, fields=JOB_FIELDS)
    return EXIT_OK if job["state"] == "succeeded" else EXIT_FAILED


def _watch(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    """Progress of one job until it is terminal (exit 1 unless it succeeded)."""
    return _watch_job(args.id, client, out, args, quiet=False)


def _control(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    action = args.jobs_command
    body = {"priority": args.priority} if action == "prioritize" else None
    job = client.request("POST", f"/jobs/{args.id}/{action}", json=body, **control(args))
    out.show(job, fields=["id", "state", "reason", "priority", "attempt", "replay_of"])
    return EXIT_OK


def _pause(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    action = args.jobs_command
    body = {"job_type": args.type}
    quota = client.request("POST", f"/jobs/{action}", json=body, **control(args))
    scope = f"job type {args.type}" if args.type else "every job of the tenant"
    verb = "paused" if action == "pause" else "resumed"
    out.show(quota, summary=lambda _: f"{verb}: {scope}")
    return EXIT_OK


def register(c: Commands) -> None:
    sub = c.group("jobs", "jobs: submit, list, show, watch, cancel, retry, prioritize, replay")
    p = c.leaf(
        sub,
        "list",
        list_of(
            "/jobs", JOB_COLUMNS, state="state", run_id="run", job_type="type", source_id="source"
        ),
        "list jobs",
        c.paging,
        ops=["GET /jobs"],
    )
    p.add_argument("--state", action="append", choices=JOB_STATES, default=[])
    p.add_argument("--run", default="", help="run id")
    p.add_argument("--type", default="", help="job type")
    p.add_argument("--source", default="", help="source id")
    p = c.leaf(
        sub,
        "show",
        _show,
        "show a job and its history",
        ops=["GET /jobs/{job_id}", "GET /jobs/{job_id}/history"],
        item="job_id",
    )
    p = c.leaf(
        sub,
        "history",
        list_of("/jobs/{id}/history", HISTORY_COLUMNS),
        "a job's state transitions (events)",
        c.paging,
        ops=["GET /jobs/{job_id}/history"],
        item="job_id",
    )
    p = c.leaf(
        sub,
        "artifacts",
        list_of("/jobs/{id}/artifacts", ARTIFACT_COLUMNS),
        "artifacts a job's attempts recorded",
        c.paging,
        ops=["GET /jobs/{job_id}/artifacts"],
        item="job_id",
    )
    p = c.leaf(sub, "submit", _submit, "submit one job (flags or -f FILE)", ops=["POST /jobs"])
    p.add_argument("-f", "--file", default="", help="the job as YAML or JSON ('-': stdin)")
    p.add_argument("--type", default="", help="job type")
    p.add_argument("--source", default="", help="source id")
    p.add_argument("--project", default="")
    p.add_argument("--payload", default="", help="JSON object")
    p.add_argument("--priority", type=int, default=None)
    p.add_argument("--key", default="", help="the job's key in its run")
    p.add_argument("--idempotency-key", default="", help="a repeat returns the first job")
    p.add_argument("--correlation-id", default="")
    p.add_argument("--max-attempts", type=int, default=None)
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE; repeatable")
    p.add_argument("--run", default="", help="add it to this run")
    p.add_argument("--wait", action="store_true", help="then watch it until terminal")
    add_watch_options(p)
    p = c.leaf(
        sub,
        "watch",
        _watch,
        "progress until the job is terminal",
        ops=["GET /jobs/{job_id}"],
        item="job_id",
    )
    add_watch_options(p)
    for name, text, parent in (
        ("cancel", "cancel a pending, ready or leased job", c.control),
        ("retry", "move a dead job back to ready", c.control),
        ("prioritize", "change a waiting job's priority", c.control),
        ("replay", "create a new job from this job's payload (replay_of set)", c.control),
    ):
        p = c.leaf(
            sub, name, _control, text, parent, ops=[f"POST /jobs/{{job_id}}/{name}"], item="job_id"
        )
        if name == "prioritize":
            p.add_argument("--priority", type=int, required=True, help="-1000..1000")
    for name, text in (
        ("pause", "stop leasing the tenant's jobs (or one job type's); they stay ready"),
        ("resume", "lease the tenant's jobs (or one job type's) again"),
    ):
        p = c.leaf(sub, name, _pause, text, c.control, ops=[f"POST /jobs/{name}"])
        p.add_argument("--type", default="", help="only this job type")
