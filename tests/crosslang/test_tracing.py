"""Issue 18 acceptance, tracing: one REST submit of a 3-job DAG, served by a Python, a Go and
a Rust worker, is one trace in a real OTLP/gRPC receiver.

The stack runs as operators run it (``scripts/stack.py up``: every service its own process,
configured by environment variables only) with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at
an OTLP receiver served by this test (``tests/otlp_receiver.py``, the collector's own
``TraceService`` protocol); the workers are the example workers of the three SDKs. The
trace must hold, parented so:

    gateway  POST /api/v1/orchestrator/runs                       (FastAPI server span)
      scheduler  stella.orchestrator.v1.SchedulerService/CreateRun (server span)
        PostgreSQL statements of the submit                         (psycopg client spans)
        leases  stella.lease  (one per job)  →  stella.job.complete
        worker  stella.job.run  (one per job: python, go, rust)

and the scheduler's JSON log line of that call carries the trace id.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from bench.ports import free_port
from tests.conftest import DEV_SECRET
from tests.crosslang.conftest import stop_all
from tests.otlp_receiver import OtlpReceiver, Span

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
SDKS = ("python", "go", "rust")
WAIT_S = 180  # generous: a loaded 2-core machine starts ten processes slowly
SERVER, CONSUMER = 2, 5  # OTLP SpanKind values


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


@pytest.fixture
def traced_env(
    database_url: str, tenants, receiver: OtlpReceiver, tmp_path: Path
) -> dict[str, str]:
    """The environment of every process of the test: its own ports, database and Redis key
    prefixes, the test's secret, and tracing on towards the receiver."""
    run_id = f"{tmp_path.name}-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {
        "ORCH_DATABASE_URL": database_url,
        "ORCH_STATE_DIR": str(tmp_path / "stack"),
        "ORCH_AUTH_HS256_SECRET": DEV_SECRET,
        "ORCH_SHUTDOWN_GRACE_S": "2",
        # Buckets of this run only: tmp_path's name repeats in every pytest session and
        # buckets live 24 h in Redis (test_dashboards_prometheus.py says what that broke).
        "ORCH_RATELIMIT_KEY_PREFIX": f"orch:trace-test:{run_id}:",
        "ORCH_GATEWAY_RATELIMIT_KEY_PREFIX": f"orch:trace-gw-test:{run_id}:",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        # Export every 200 ms instead of 5 s (the standard batch processor variable).
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("SCHEDULER", "LEASES", "RATELIMIT", "AUDIT"):
        env[f"ORCH_{name}_GRPC_PORT"] = str(free_port())
        env[f"ORCH_{name}_METRICS_PORT"] = str(free_port())
    env["ORCH_RATELIMIT_ENVOY_GRPC_PORT"] = str(free_port())
    env["ORCH_GATEWAY_HTTP_PORT"] = str(free_port())
    return env


@pytest.fixture
def stack(traced_env: dict[str, str]) -> Iterator[Path]:
    """The five services as processes (stack.py up); their log directory."""
    script = [sys.executable, str(ROOT / "scripts" / "stack.py")]
    up = subprocess.run(
        [*script, "up"], cwd=ROOT, env=traced_env, capture_output=True, text=True, timeout=600
    )
    logs = Path(traced_env["ORCH_STATE_DIR"]) / "logs"
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield logs
    finally:
        # SIGTERM: each service flushes its queued spans on the way out.
        subprocess.run([*script, "down"], cwd=ROOT, env=traced_env, timeout=300, check=False)


def _worker_command(
    sdk: str, binary: Path | None, target: str, token: str, types: str
) -> list[str]:
    worker_id = f"trace-{sdk}-{uuid.uuid4().hex[:6]}"
    if sdk == "python":
        module = "tests.crosslang._python_worker"
        return [sys.executable, "-m", module, target, token, worker_id, "2", types, "0.01"]
    assert binary is not None
    flags = ["-target", target, "-token", token, "-worker-id", worker_id, "-types", types]
    return [str(binary), *flags, "-concurrency", "2", "-delay", "10ms"]


def _children(spans: list[Span], parent: Span, name: str) -> list[Span]:
    return [s for s in spans if s.name == name and s.parent_span_id == parent.span_id]


def test_one_rest_submit_is_one_trace_across_services_and_three_sdks(
    stack: Path,
    traced_env: dict[str, str],
    receiver: OtlpReceiver,
    make_token,
    database_url: str,
    go_worker_bin: Path,
    rust_worker_bin: Path,
    tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    job_type = {sdk: f"trace.{sdk}.{suffix}" for sdk in SDKS}
    leases_target = f"127.0.0.1:{traced_env['ORCH_LEASES_GRPC_PORT']}"
    worker_token = make_token("acme", ("orch:work",), subject="trace-fleet")
    binaries: dict[str, Path | None] = {
        "python": None,
        "go": go_worker_bin,
        "rust": rust_worker_bin,
    }
    workers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for sdk in SDKS:
            log = (tmp_path / f"worker-{sdk}.log").open("wb")
            workers[sdk] = subprocess.Popen(
                _worker_command(sdk, binaries[sdk], leases_target, worker_token, job_type[sdk]),
                cwd=ROOT,
                env={**traced_env, "OTEL_SERVICE_NAME": f"worker-{sdk}", "RUST_LOG": "info"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
        # One REST call, without a traceparent of its own: the gateway's span is the root.
        body = {
            "name": f"trace-{suffix}",
            "jobs": [
                {"key": "p", "job_type": job_type["python"]},
                {"key": "g", "job_type": job_type["go"], "depends_on": ["p"]},
                {"key": "r", "job_type": job_type["rust"], "depends_on": ["g"]},
            ],
        }
        gateway = f"http://127.0.0.1:{traced_env['ORCH_GATEWAY_HTTP_PORT']}"
        reply = httpx.post(
            f"{gateway}/api/v1/orchestrator/runs",
            json=body,
            headers={"Authorization": f"Bearer {make_token('acme')}"},
            timeout=60,
        )
        assert reply.status_code == 201, reply.text
        created = reply.json()
        run_id = created["run"]["id"]
        job_of = {job["key"]: job["id"] for job in created["jobs"]}
        _wait_for_run(database_url, run_id)
    finally:
        # SIGTERM: each worker drains, then flushes its spans.
        stuck = stop_all(workers.values(), timeout_s=120)
    assert not stuck, stuck
    for sdk, proc in workers.items():
        assert proc.returncode == 0, (sdk, (tmp_path / f"worker-{sdk}.log").read_text()[-2000:])

    job_ids = set(job_of.values())

    def complete(spans: list[Span]) -> bool:
        runs = {s.attributes.get("stella.job.id") for s in spans if s.name == "stella.job.run"}
        done = {s.attributes.get("stella.job.id") for s in spans if s.name == "stella.job.complete"}
        return job_ids <= runs and job_ids <= done

    spans = receiver.wait_for(complete, WAIT_S, "the handler and completion spans of 3 jobs")
    root = next(
        s
        for s in spans
        if s.service == "orchestrator-gateway"
        and s.kind == SERVER
        and not s.parent_span_id
        and s.attributes.get("http.route") == "/api/v1/orchestrator/runs"
    )
    trace = [s for s in spans if s.trace_id == root.trace_id]

    # gateway → scheduler: the gateway forwarded its request's context over gRPC.
    (create,) = _children(trace, root, "stella.orchestrator.v1.SchedulerService/CreateRun")
    assert (create.service, create.kind) == ("orchestrator-scheduler", SERVER)
    # The submit's statements are client spans of the scheduler's call.
    db_spans = [
        s
        for s in trace
        if s.parent_span_id == create.span_id
        and {"db.system", "db.system.name"} & set(s.attributes)
    ]
    assert db_spans, "no PostgreSQL client span under the scheduler's CreateRun span"
    # The gateway's per-caller rate limit is a Redis call made for this request.
    redis_spans = [s for s in trace if s.attributes.get("db.system") == "redis"]
    assert redis_spans, sorted({(s.service, s.name) for s in trace})
    assert all(s.service == "orchestrator-gateway" for s in redis_spans)

    # scheduler → leases: each job's stored trace_parent is the CreateRun span.
    with psycopg.connect(database_url) as db:
        stored = dict(
            db.execute(
                "SELECT id::text, trace_parent FROM orchestrator.jobs WHERE run_id = %s", (run_id,)
            ).fetchall()
        )
    # version 00, the trace, the CreateRun span, flags with "sampled" set
    assert set(stored) == job_ids
    for trace_parent in stored.values():
        version, trace_id, span_id, flags = trace_parent.split("-")
        assert (version, trace_id, span_id) == ("00", root.trace_id, create.span_id)
        assert int(flags, 16) & 1, trace_parent
    leases = {s.attributes["stella.job.id"]: s for s in _children(trace, create, "stella.lease")}
    assert set(leases) == job_ids
    for lease in leases.values():
        assert lease.service == "orchestrator-leases"
        assert lease.attributes["stella.tenant"] == "acme"
        (done,) = _children(trace, lease, "stella.job.complete")
        assert done.attributes["stella.job.outcome"] == "succeeded"
        assert done.attributes["stella.result.ok"] is True

    # → each SDK's handler span: a child of the job's trace_parent, with the job's attributes.
    handlers = {
        s.attributes["stella.job.id"]: s for s in _children(trace, create, "stella.job.run")
    }
    assert set(handlers) == job_ids
    for key, sdk in (("p", "python"), ("g", "go"), ("r", "rust")):
        span = handlers[job_of[key]]
        assert (span.service, span.kind) == (f"worker-{sdk}", CONSUMER), span
        assert span.attributes["stella.sdk"] == sdk
        assert span.attributes["stella.job.type"] == job_type[sdk]
        assert span.attributes["stella.job.attempt"] == 1
        assert span.attributes["stella.tenant"] == "acme"
        assert span.attributes["stella.job.outcome"] == "succeeded"

    # The scheduler's JSON access line of that call carries the trace and its span.
    lines = [
        json.loads(line)
        for line in (stack / "scheduler-0.log").read_text().splitlines()
        if line.startswith("{")
    ]
    access = [
        r for r in lines if r.get("method") == "/stella.orchestrator.v1.SchedulerService/CreateRun"
    ]
    assert [(r["trace_id"], r["span_id"]) for r in access] == [(root.trace_id, create.span_id)]
    # Workers closing their Work streams at the end cause no error in any service's log.
    for log in sorted(stack.glob("*.log")):
        text = log.read_text()
        assert "Failed to detach" not in text, log.name
        assert "Traceback" not in text, log.name
        levels = {json.loads(line)["level"] for line in text.splitlines() if line.startswith("{")}
        assert not levels & {"ERROR", "CRITICAL"}, log.name


def _wait_for_run(database_url: str, run_id: str) -> None:
    deadline = time.monotonic() + WAIT_S
    delay = 0.1
    with psycopg.connect(database_url, autocommit=True) as db:
        while True:
            state = db.execute(
                "SELECT state FROM orchestrator.runs WHERE id = %s", (run_id,)
            ).fetchone()[0]
            if state in ("succeeded", "failed", "canceled"):
                assert state == "succeeded"
                return
            if time.monotonic() > deadline:
                pytest.fail(f"run {run_id} still {state} after {WAIT_S} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
