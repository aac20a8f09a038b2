"""``stella orchestrator insights …``, ``audit bundle`` and ``tenants shares``: the Console's
reads (failure heatmap, SLO burn, quota usage, job search), a signed audit bundle saved to a
file, and the fair-share weights of the tenants the token grants."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from stella_orchestrator._cli_base import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Commands,
    Output,
    list_of,
)
from stella_orchestrator._rest import RestClient
from stella_orchestrator._restcli_ops import ERROR_CLASSES

SLO_COLUMNS = (
    ("WINDOW", "window"),
    ("SUCCEEDED", "succeeded"),
    ("DEAD", "dead"),
    ("FAILED ATTEMPTS", "failed_attempts"),
    ("FAILURE RATE", "failure_rate"),
    ("BURN", "burn_rate"),
)
USAGE_COLUMNS = (
    ("QUOTA", "quota_id"),
    ("JOB TYPE", "job_type"),
    ("ACTIVE", "active"),
    ("QUEUED", "queued"),
    ("HOURLY TOKENS LEFT", "hourly_tokens_left"),
)
SEARCH_COLUMNS = (
    ("ID", "id"),
    ("TYPE", "job_type"),
    ("STATE", "state"),
    ("ATTEMPT", "attempt"),
    ("LAST ERROR", "last_error_class"),
    ("MESSAGE", "last_error_message"),
    ("UPDATED (UTC)", "updated_at"),
)
TENANT_COLUMNS = (("TENANT", "id"), ("NAME", "display_name"), ("WEIGHT", "weight"))


def _heatmap(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    heatmap = client.get("/insights/failure-heatmap", hours=args.hours)

    def render(value: dict[str, Any]) -> None:
        # One row per source: failures per UTC hour, oldest first (the Console's colours).
        hours = [h[11:13] for h in value["hours"]]
        columns = [("SOURCE", "source_name"), *((f"{h}h", f"h{i}") for i, h in enumerate(hours))]
        rows = [
            {"source_name": r["source_name"], **{f"h{i}": n for i, n in enumerate(r["failures"])}}
            for r in value["rows"]
        ]
        out.table(rows, columns, title=f"failures per hour (UTC) since {value['since']}")

    out.show(heatmap, render=render)
    return EXIT_OK


def _slo(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    slo = client.get("/insights/slo")
    out.show(slo, columns=SLO_COLUMNS, items="windows", title=f"SLO target {slo['target']}")
    return EXIT_OK


def _bundle(args: argparse.Namespace, client: RestClient, out: Output) -> int:
    """A signed audit bundle (tar) of one scope, saved to a file; prints its sha256."""
    if bool(args.start) != bool(args.end):
        raise CliError(EXIT_USAGE, "a time range needs both --start and --end")
    target = Path(args.file)
    if target.exists() and not args.force:
        raise CliError(EXIT_USAGE, f"{target} exists (--force overwrites it)")
    params = {"run_id": args.run, "source_id": args.source, "start": args.start, "end": args.end}
    with out.err.status("the audit service is building the bundle"):
        archive = client.request("GET", "/audit/bundle", params=params)
    try:
        target.write_bytes(archive)
    except OSError as exc:
        raise CliError(EXIT_USAGE, f"cannot write {target}: {exc.strerror or exc}") from None
    result = {
        "file": str(target),
        "bytes": len(archive),
        "sha256": hashlib.sha256(archive).hexdigest(),
    }
    out.show(
        result,
        summary=lambda r: (
            f"wrote {r['bytes']} bytes to {r['file']} (sha256 {r['sha256']}); "
            "check it with: stella orchestrator audit verify"
        ),
    )
    return EXIT_OK


def register(c: Commands) -> None:
    sub = c.group("insights", "the Console's reads: failure heatmap, SLO burn, usage, job search")
    p = c.leaf(
        sub,
        "heatmap",
        _heatmap,
        "failed attempts per source and UTC hour",
        ops=["GET /insights/failure-heatmap"],
    )
    p.add_argument("--hours", type=int, default=24, help="hours back")
    c.leaf(sub, "slo", _slo, "SLO burn over 1 h, 6 h and 3 d", ops=["GET /insights/slo"])
    c.leaf(
        sub,
        "quota-usage",
        list_of("/insights/quota-usage", USAGE_COLUMNS),
        "each quota's usage now, beside its limits",
        c.paging,
        ops=["GET /insights/quota-usage"],
    )
    p = c.leaf(
        sub,
        "jobs",
        list_of(
            "/insights/jobs",
            SEARCH_COLUMNS,
            state="state",
            job_type="type",
            source_id="source",
            error_class="error_class",
            since="since",
            until="until",
            failed_in_range="failed_in_range",
        ),
        "search jobs by state, type, source, last error class and time range",
        c.paging,
        ops=["GET /insights/jobs"],
    )
    p.add_argument("--state", action="append", default=[])
    p.add_argument("--type", default="", help="job type")
    p.add_argument("--source", default=None, help="source id")
    p.add_argument("--error-class", choices=ERROR_CLASSES, default=None)
    p.add_argument("--since", default=None, help="RFC 3339 UTC")
    p.add_argument("--until", default=None, help="RFC 3339 UTC")
    p.add_argument(
        "--failed-in-range",
        action="store_const",
        const="true",
        default=None,
        help="the range is of failed attempts, not of creation",
    )

    sub = c.group("audit", "the audit log of operator actions; bundles offline")
    p = c.leaf(
        sub,
        "bundle",
        _bundle,
        "save a signed audit bundle (tar) of a run, a source or a time range",
        ops=["GET /audit/bundle"],
    )
    p.add_argument("-f", "--file", required=True, help="where to write the tar")
    p.add_argument("--force", action="store_true", help="overwrite the file")
    p.add_argument("--run", default="", help="run id")
    p.add_argument("--source", default="", help="source id")
    p.add_argument("--start", default="", help="RFC 3339 UTC, inclusive (with --end)")
    p.add_argument("--end", default="", help="RFC 3339 UTC, exclusive")

    # `tenants` is also the offline group (add, list, weight: straight to the database).
    sub = c.group("tenants", "register and list tenants")
    c.leaf(
        sub,
        "shares",
        list_of("/tenants", TENANT_COLUMNS),
        "fair-share weights of the tenants the token grants (over REST)",
        c.paging,
        ops=["GET /tenants"],
    )
