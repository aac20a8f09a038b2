"""make demo (python -m demo): the stack on embedded defaults plus a demo workload.

1. ``scripts/stack.py up``: PostgreSQL and Redis (system packages, provisioned when missing),
   migrations, the demo tenant, every service, each SERVING.
2. A simulated upstream (demo/upstream.py): NVD, OSV, GHSA and a vendor CSAF server on one
   local port, each throttling at its own rate (429 + Retry-After), with transient 503s and
   a few windows broken for good.
3. A fleet of worker processes (demo/worker.py, built on the Python SDK).
4. One DAG run per feed: advisory ingest → VEX ingest → SBOM → policy evaluation, several
   hundred jobs in all; a live progress bar; a final table per feed, the dead-letter
   summary by error class, and the incidents the broken windows opened (each broken window
   fails 5 attempts with http_5xx within seconds: over the default threshold, 5 failures in
   5 minutes; they resolve after 10 quiet minutes, docs/incidents.md).

It keeps serving until Ctrl-C; ``--exit`` stops everything when the runs finish (scripts).
Exit status 0 when every job ended succeeded, or dead-lettered with a reason (and its
downstream canceled as upstream_failed); 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psycopg
from google.protobuf import struct_pb2
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from demo.upstream import Upstream
from orchestrator_grpckit import DEV_HS256_SECRET, mint_dev_token
from stella.orchestrator.v1 import (
    common_pb2,
    operations_pb2,
    resources_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

ROOT = Path(__file__).resolve().parent.parent
TENANT = "demo"
FEEDS = (
    ("nvd", "nvd", "services.nvd.nist.gov"),
    ("osv", "osv", "api.osv.dev"),
    ("ghsa", "ghsa", "api.github.com"),
    ("csaf-vendor", "csaf", "csaf.vendor.example"),
)
WINDOWS_PER_FEED = 36  # hourly event-time windows per feed
POLICY_SHARD = 6  # windows per policy evaluation
FLEET = 2  # worker processes
FLEET_CONCURRENCY = 24
DEMO_TIMEOUT_S = 600
INCIDENT_SETTLE_S = 3.0  # a few incident passes (about one a second)
TERMINAL_RUN_STATES = {
    common_pb2.RUN_STATE_SUCCEEDED,
    common_pb2.RUN_STATE_FAILED,
    common_pb2.RUN_STATE_CANCELED,
}
SCHEDULER_TARGET = f"127.0.0.1:{os.environ.get('ORCH_SCHEDULER_GRPC_PORT', '50051')}"
LEASES_TARGET = f"127.0.0.1:{os.environ.get('ORCH_LEASES_GRPC_PORT', '50052')}"
STATE_DIR = Path(os.environ.get("ORCH_STATE_DIR", Path(__file__).resolve().parent.parent / ".run"))
DATABASE_URL = os.environ.get(
    "ORCH_DATABASE_URL", "postgresql://orchestrator:orchestrator@127.0.0.1:5432/orchestrator"
)


def _payload(**values: object) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def _retry_policy() -> common_pb2.RetryPolicy:
    policy = common_pb2.RetryPolicy(max_attempts=5, backoff_multiplier=2.0)
    policy.initial_backoff.FromMilliseconds(200)
    policy.max_backoff.FromSeconds(5)
    return policy


def _dag(feed: str, source_id: str) -> list[resources_pb2.JobSpec]:
    jobs: list[resources_pb2.JobSpec] = []
    for w in range(WINDOWS_PER_FEED):
        for key, job_type, parent in (
            (f"ingest-{w}", "advisory.ingest", None),
            (f"vex-{w}", "vex.ingest", f"ingest-{w}"),
            (f"sbom-{w}", "sbom.scan", f"vex-{w}"),
        ):
            jobs.append(
                resources_pb2.JobSpec(
                    key=key,
                    job_type=job_type,
                    source_id=source_id,
                    depends_on=[parent] if parent else [],
                    payload=_payload(feed=feed, window=w),
                    retry_policy=_retry_policy(),
                )
            )
    for shard in range(WINDOWS_PER_FEED // POLICY_SHARD):
        windows = range(shard * POLICY_SHARD, (shard + 1) * POLICY_SHARD)
        jobs.append(
            resources_pb2.JobSpec(
                key=f"policy-{shard}",
                job_type="policy.evaluate",
                depends_on=[f"sbom-{w}" for w in windows],
                payload=_payload(feed=feed, shard=shard),
            )
        )
    return jobs


def _ensure_source(stub, md, name: str, kind: str, host: str) -> resources_pb2.Source:
    listed = stub.ListSources(scheduler_pb2.ListSourcesRequest(source_type=kind), metadata=md)
    for src in listed.sources:
        if src.name == name:
            return src
    reply = stub.CreateSource(
        scheduler_pb2.CreateSourceRequest(
            source=resources_pb2.Source(
                name=name,
                source_type=kind,
                host=host,
                base_url=f"https://{host}/",
                enabled=True,
                job_types=["advisory.ingest", "vex.ingest"],
            )
        ),
        metadata=md,
    )
    return reply.source


def _stack(action: str) -> int:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "stack.py"), action]).returncode


def _start_fleet(upstream_url: str) -> list[subprocess.Popen[bytes]]:
    token = mint_dev_token(
        os.environ.get("ORCH_AUTH_HS256_SECRET") or DEV_HS256_SECRET,
        "demo-fleet",
        [TENANT],
        ["orch:work"],
        ttl_s=12 * 3600,
    )
    log_dir = STATE_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    fleet = []
    for n in range(FLEET):
        log = (log_dir / f"demo-worker-{n}.log").open("ab")
        fleet.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "demo.worker",
                    "--target",
                    LEASES_TARGET,
                    "--token",
                    token,
                    "--upstream",
                    upstream_url,
                    "--concurrency",
                    str(FLEET_CONCURRENCY),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return fleet


def _stop_fleet(fleet: list[subprocess.Popen[bytes]]) -> None:
    for proc in fleet:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in fleet:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _dead_letter_summary(run_ids: list[str]) -> list[tuple[str, int, str]]:
    with psycopg.connect(DATABASE_URL) as conn:
        rows = conn.execute(
            "SELECT error_class, count(*), min(last_error) FROM orchestrator.dead_letter"
            " WHERE tenant = %s AND run_id = ANY(%s::uuid[])"
            " GROUP BY error_class ORDER BY count(*) DESC, error_class",
            (TENANT, run_ids),
        ).fetchall()
    return [(r[0], int(r[1]), r[2]) for r in rows]


def _open_incidents(md: tuple[tuple[str, str], ...]) -> list[resources_pb2.Incident]:
    """The demo tenant's open incidents, once the incident pass has caught up (it runs about
    once a second; the last failures may be a pass away)."""
    time.sleep(INCIDENT_SETTLE_S)
    with grpc.insecure_channel(SCHEDULER_TARGET) as channel:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        reply = stub.ListIncidents(
            operations_pb2.ListIncidentsRequest(
                state=resources_pb2.INCIDENT_STATE_OPEN, page_size=500
            ),
            metadata=md,
        )
    return list(reply.incidents)


def _print_incidents(console: Console, incidents: list[resources_pb2.Incident]) -> None:
    if not incidents:
        console.print("No incident is open.")
        return
    table = Table(title="Open incidents (Console: Incidents; they resolve after 10 quiet minutes)")
    table.add_column("reason code", no_wrap=True)
    for column in ("job type", "failures", "samples", "first seen (UTC)"):
        table.add_column(column)
    for incident in incidents:
        table.add_row(
            incident.reason_code,
            incident.job_type,
            str(incident.failure_count),
            str(len(incident.sample_job_ids)),
            incident.first_seen_at.ToDatetime().strftime("%H:%M:%S"),
        )
    console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the Stella Orchestrator demo.")
    parser.add_argument("--exit", action="store_true", help="stop everything when the runs end")
    parser.add_argument(
        "--resume-failed",
        action="store_true",
        help="then fix the upstream's broken windows and resume every failed run (ResumeRun)",
    )
    args = parser.parse_args()
    console = Console()

    if _stack("up"):
        return 1
    upstream = Upstream().start()
    upstream_url = f"http://127.0.0.1:{upstream.port}"
    fleet = _start_fleet(upstream_url)
    operator = mint_dev_token(
        DEV_HS256_SECRET, "demo-operator", [TENANT], ["orch:read", "orch:operate"], ttl_s=12 * 3600
    )
    reader = mint_dev_token(
        DEV_HS256_SECRET, "demo-viewer", [TENANT], ["orch:read"], ttl_s=12 * 3600
    )
    md = (("authorization", f"Bearer {operator}"),)
    session = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    ok = False
    try:
        with grpc.insecure_channel(SCHEDULER_TARGET) as channel:
            stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
            runs = {}
            for name, kind, host in FEEDS:
                source = _ensure_source(stub, md, name, kind, host)
                created = stub.CreateRun(
                    scheduler_pb2.CreateRunRequest(
                        name=f"{name}-pipeline",
                        source_id=source.id,
                        project="demo",
                        idempotency_key=f"demo-{name}-{session}",
                        jobs=_dag(name, source.id),
                    ),
                    metadata=md,
                )
                runs[name] = created.run
            total = sum(sum(r.job_counts.values()) for r in runs.values())
            console.print(
                f"submitted {len(runs)} runs, {total} jobs; fleet of {FLEET} workers x "
                f"{FLEET_CONCURRENCY}; upstream at {upstream_url}"
            )
            started = time.monotonic()
            with Progress(
                TextColumn("[bold]jobs finished"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task("jobs", total=total, detail="")
                while True:
                    for name in runs:
                        runs[name] = stub.GetRun(
                            scheduler_pb2.GetRunRequest(run_id=runs[name].id), metadata=md
                        ).run
                    counts: dict[str, int] = {}
                    for run in runs.values():
                        for state, n in run.job_counts.items():
                            counts[state] = counts.get(state, 0) + n
                    done = (
                        counts.get("succeeded", 0)
                        + counts.get("dead", 0)
                        + counts.get("canceled", 0)
                    )
                    detail = " ".join(f"{s}={counts[s]}" for s in sorted(counts))
                    bar.update(task, completed=done, detail=detail)
                    if all(r.state in TERMINAL_RUN_STATES for r in runs.values()):
                        break
                    if time.monotonic() - started > DEMO_TIMEOUT_S:
                        console.print("[red]demo timed out; see .run/logs/")
                        return 1
                    time.sleep(0.5)
            elapsed = time.monotonic() - started

        table = Table(title=f"Demo runs ({elapsed:.1f} s)")
        columns = ("feed", "run", "state", "jobs", "succeeded", "dead", "canceled", "429s")
        columns += ("429 share", "achieved/s", "upstream limit/s")
        for column in columns:
            table.add_column(column, justify="right" if column not in ("feed", "run") else "left")
        unexplained = 0
        for name, _kind, host in FEEDS:
            run = runs[name]
            c = dict(run.job_counts)
            state = common_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_").lower()
            unexplained += sum(
                n for s, n in c.items() if s not in ("succeeded", "dead", "canceled")
            )
            table.add_row(
                name,
                run.id[:8],
                state,
                str(sum(c.values())),
                str(c.get("succeeded", 0)),
                str(c.get("dead", 0)),
                str(c.get("canceled", 0)),
                str(upstream.stats[host].get(429, 0)),
                f"{upstream.share_429(host):.1%}",
                f"{upstream.achieved_per_s(host):.1f}",
                f"{upstream.rates[host]:g}",
            )
        console.print(table)
        console.print(
            "Rate limits were not configured: each feed's bucket learnt its upstream's limit"
            " from 429s (docs/ratelimits.md); the Console's Throttles view shows the effective"
            " rates it settled on."
        )
        dead = _dead_letter_summary([r.id for r in runs.values()])
        if dead:
            dl = Table(
                title="Dead-letter by error class (downstream jobs canceled: upstream_failed)"
            )
            for column in ("error class", "jobs", "example"):
                dl.add_column(column)
            for error_class, n, example in dead:
                dl.add_row(error_class, str(n), example[:70])
            console.print(dl)
        _print_incidents(console, _open_incidents(md))
        ok = unexplained == 0
        if args.resume_failed:
            upstream.repair()
            ok = _resume_failed(console, md, runs) and ok
        console.print()
        console.print(f"Tokens for tenant '{TENANT}' (12 h):")
        console.print(f"  read:     {reader}", soft_wrap=True)
        console.print(f"  operator: {operator}", soft_wrap=True)
        gateway = f"http://127.0.0.1:{os.environ.get('ORCH_GATEWAY_HTTP_PORT', '8080')}"
        console.print(f"Console: {gateway}/  (sign in with a token above)")
        console.print(
            f"REST API: {gateway}/api/v1/orchestrator  (OpenAPI: {gateway}/.well-known/openapi)"
        )
        console.print(
            f"CLI: STELLA_ORCH_API_URL={gateway} STELLA_ORCH_TOKEN=<token> "
            ".venv/bin/stella orchestrator runs list"
        )
        console.print(f"Explore: grpcurl -plaintext {SCHEDULER_TARGET} list")
        if args.exit:
            return 0 if ok else 1
        console.print("\nServing until Ctrl-C (make down stops a stack started with make up).")
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        return 0 if ok else 1
    finally:
        _stop_fleet(fleet)
        upstream.stop()
        _stack("down")


def _resume_failed(console: Console, md: tuple[tuple[str, str], ...], runs: dict) -> bool:
    """Resumes every failed run once the upstream is fixed and waits until they end; True when
    each ends succeeded with every job succeeded exactly once (counted in job.succeeded
    events: the jobs that had succeeded before the resume did not run again)."""
    with grpc.insecure_channel(SCHEDULER_TARGET) as channel:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        failed = [r.id for r in runs.values() if r.state == common_pb2.RUN_STATE_FAILED]
        operator = common_pb2.OperatorContext(
            reason="demo: the vendor re-published the broken windows", ticket="DEMO-1"
        )
        for run_id in failed:
            stub.ResumeRun(
                scheduler_pb2.ResumeRunRequest(run_id=run_id, operator=operator), metadata=md
            )
        started = time.monotonic()
        while True:
            states = {
                run_id: stub.GetRun(
                    scheduler_pb2.GetRunRequest(run_id=run_id), metadata=md
                ).run.state
                for run_id in failed
            }
            if all(s in TERMINAL_RUN_STATES for s in states.values()):
                break
            if time.monotonic() - started > DEMO_TIMEOUT_S:
                console.print("[red]resumed runs timed out; see .run/logs/")
                return False
            time.sleep(0.5)
    with psycopg.connect(DATABASE_URL) as conn:
        rows = conn.execute(
            "SELECT j.run_id::text, count(*) FILTER (WHERE e.seq IS NOT NULL),"
            "       count(DISTINCT j.id) FILTER (WHERE e.seq IS NOT NULL)"
            "  FROM orchestrator.jobs j LEFT JOIN orchestrator.events e"
            "    ON e.job_id = j.id AND e.type = 'job.succeeded'"
            " WHERE j.run_id = ANY(%s::uuid[]) GROUP BY j.run_id",
            (failed,),
        ).fetchall()
    events = {run_id: (int(n), int(jobs)) for run_id, n, jobs in rows}
    table = Table(title="Resumed runs (upstream fixed, ResumeRun)")
    for column in ("run", "state", "job.succeeded events", "jobs succeeded"):
        table.add_column(column)
    ok = True
    for run_id in failed:
        state = common_pb2.RunState.Name(states[run_id]).removeprefix("RUN_STATE_").lower()
        n, distinct = events.get(run_id, (0, 0))
        table.add_row(run_id[:8], state, str(n), str(distinct))
        ok = ok and state == "succeeded" and n == distinct
    console.print(table)
    return ok


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
