"""make bench: throughput and latency of the orchestrator, and the peers on the same machine.

One figure per line, ``name value unit`` (docs/architecture.md §8):

* enqueue_jobs_per_s             SubmitJobs over gRPC, batches of 500 standalone no-op jobs
* e2e_jobs_per_s                 burn-down of those jobs (20,000 by default) by 4 Go SDK
                                 worker processes x concurrency 50 (no-op handlers; the
                                 fastest SDK, --sdks picks) through the leases service's
                                 Work stream, leases, fencing, events, idempotency and leasing
                                 rate limits (a token per lease from Redis; unconfigured
                                 buckets do not bind) all on; measured in the ledger from the
                                 first lease to the last completion (process start-up
                                 excluded, like the peers); median of --e2e-rounds
* e2e_jobs_per_s_<sdk>           the same for each SDK (go, python, rust; Rust built
                                 --release on first use, minutes)
* e2e_jobs_per_s_2_leases        the headline's burn-down served by two leases replicas (the
                                 workers given both addresses)
* e2e_jobs_per_s_ratelimit_off   the headline's burn-down with ORCH_LEASES_RATELIMIT=off,
                                 rounds alternating
* ratelimit_overhead_pct         (off - on) / off: the cost of non-binding rate limiting
* e2e_jobs_per_s_with_audit      the headline's burn-down with the audit service chaining
                                 every event as it goes
* audit_chain_catchup_s          from that burn-down's last completion until the chain has
                                 linked every event (target <= 2 s)
* cpu_us_per_job_<group>[_<sdk>] CPU microseconds per job of postgres, redis, scheduler,
                                 leases and the workers (and _total; cpu_busy_pct: the share
                                 of the cores used) over each SDK's median burn-down's
                                 window, from /proc (no suffix: the headline's); PostgreSQL's
                                 top statements of that burn-down (pg_stat_statements) go to
                                 stderr (bench/cpu_budget.py)
* start_latency_p50_ms / _p99_ms enqueue→lease latency at a steady 500 jobs/s offered load
                                 (created_at → leased_at of each job)
* dag_create_jobs_per_s          CreateRun of 1,000-job three-level DAGs
* ratelimit_acquire_decisions_per_s  BucketStore.acquire against Redis, batches of 100 one-token
                                 requests over 1,000 buckets, one caller
* peer_*_jobs_per_s              graphile-worker (default and local queue) and Procrastinate
                                 burn-downs on the same PostgreSQL (bench/peers)
* ratio_vs_*                     e2e_jobs_per_s / that peer's figure
* ratelimit_convergence_*        429 share after 10 s (all hosts and per host) and slowdown
                                 against the ideal when three simulated upstreams throttle at
                                 limits nobody configured (bench/ratelimit_convergence.py, the
                                 scenario tests/e2e/test_ratelimit_convergence.py asserts the
                                 mechanism of; --skip-convergence leaves it out,
                                 --only-convergence runs nothing else)
* claim_<scenario>_*             one claim of 50 jobs (p50/p95/p99 ms), the claim+complete
                                 rate of two claimers and then SubmitJobs' rate, on 1,000 vs
                                 1,000,000 ready jobs, on a table holding a million finished
                                 jobs and over 1,000 tenants; claim_p99_1m_vs_1k_x
                                 (bench/claim_cost.py; --skip-claim-cost leaves it out)
* ratelimit_grid_*               the same algorithm's code (Lua buckets in Redis, the leases
                                 limiter) on a simulated clock over 36 simulated hosts: true
                                 limits 1-200/s, bursts 1-50, with and without 1% 503s, from
                                 the default configuration: per host the 429 share after 10 s,
                                 time / ideal and goodput / R (bench/ratelimit_grid.py; a table
                                 goes to stderr)

* idle_stream_server_kb, idle_streams_*_cpu_pct  leases-service memory per idle Work
                                 stream and CPU while 1,000 idle streams wait
                                 (bench/idle_streams.py; --skip-idle leaves it out)
* sse_*                          500 Console event streams (SSE) of one tenant held open
                                 during a burn-down offered at 40 jobs/s: delivery lag p50/p99
                                 (ledger commit -> client), the gateway's resident memory and
                                 CPU (bench/sse_load.py; --skip-sse leaves it out)

Services run as separate processes (``python -m orchestrator_scheduler`` / ``_leases``) on a
fresh database, as an operator would run them. ``--skip-peers`` leaves the peers out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import grpc
import psycopg
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.cpu_budget import (
    CpuSampler,
    Statement,
    StatementTotals,
    budget_figures,
    describe_statements,
)
from bench.ports import free_port
from bench.sdk_workers import Argv, Sdk, python_argv, sdk_workers
from orchestrator_grpckit import mint_dev_token
from orchestrator_pg import create_database, drop_database, migrate
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2, scheduler_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "ORCH_TEST_DATABASE_URL",
    "postgresql://orchestrator:orchestrator@127.0.0.1:5432/orchestrator_test",
)
SECRET = "bench-secret-0123456789abcdef0123"
TENANT = "bench"
WORKER_PROCESSES = 4
WORKER_CONCURRENCY = 50
SUBMIT_BATCH = 500
LATENCY_RATE_PER_S = 500
LATENCY_SECONDS = 10


def figure(name: str, value: float, unit: str) -> None:
    digits = 2 if unit == "x" else 1
    print(f"{name} {value:.{digits}f} {unit}", flush=True)


def note(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


class Stack:
    """The scheduler, the audit service (with ``audit``) and ``leases_replicas`` leases
    services as subprocesses on free ports (``procs`` in that order)."""

    def __init__(
        self,
        database_url: str,
        *,
        ratelimit: str = "on",
        leases_replicas: int = 1,
        audit: bool = False,
    ) -> None:
        self.ports = {"scheduler": free_port(), "leases": free_port()}
        self.leases_ports = [self.ports["leases"]] + [
            free_port() for _ in range(leases_replicas - 1)
        ]
        env = {
            **os.environ,
            "ORCH_LEASES_RATELIMIT": ratelimit,
            "ORCH_DATABASE_URL": database_url,
            "ORCH_AUTH_HS256_SECRET": SECRET,
            "ORCH_SCHEDULER_GRPC_PORT": str(self.ports["scheduler"]),
            "ORCH_SCHEDULER_METRICS_PORT": str(free_port()),
            "ORCH_LOG_LEVEL": "WARNING",
        }
        self.procs = [
            subprocess.Popen([sys.executable, "-m", "orchestrator_scheduler"], env=env, cwd=ROOT)
        ]
        if audit:
            self.ports["audit"] = free_port()
            chainer = {
                **env,
                "ORCH_AUDIT_GRPC_PORT": str(self.ports["audit"]),
                "ORCH_AUDIT_METRICS_PORT": str(free_port()),
            }
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "orchestrator_audit"], env=chainer, cwd=ROOT
                )
            )
        for port in self.leases_ports:
            replica = {
                **env,
                "ORCH_LEASES_GRPC_PORT": str(port),
                "ORCH_LEASES_METRICS_PORT": str(free_port()),
            }
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "orchestrator_leases"], env=replica, cwd=ROOT
                )
            )

    @property
    def leases_target(self) -> str:
        """Every leases replica, as the SDKs' multi-address target."""
        return ",".join(f"127.0.0.1:{port}" for port in self.leases_ports)

    def wait_serving(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        for port in dict.fromkeys([*self.ports.values(), *self.leases_ports]):
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                while True:
                    try:
                        if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                            break
                    except grpc.RpcError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"service on port {port} did not become SERVING")
                    time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_workers(
    target: str,
    job_type: str,
    count: int,
    module: str = "bench._noop_worker",
    prefix: str = "bench-w",
    tenants: list[str] | None = None,
    argv: Argv | None = None,
) -> list[subprocess.Popen[bytes]]:
    """``count`` worker processes serving ``tenants`` (the bench tenant by default; ``["*"]``
    for a shared fleet): Python SDK processes running ``module`` (no-op handlers by default),
    or the command ``argv`` builds (bench/sdk_workers.py: the Go or Rust SDK)."""
    token = mint_dev_token(SECRET, "bench-worker", tenants or [TENANT], ["orch:work"])
    command = argv or python_argv(module)
    return [
        subprocess.Popen(
            command(target, token, f"{prefix}{n}", WORKER_CONCURRENCY, job_type), cwd=ROOT
        )
        for n in range(count)
    ]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _payload(i: int) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update({"n": i})
    return s


async def bench_enqueue(stub, md, job_type: str, total: int, batch: int = SUBMIT_BATCH) -> float:
    """Submits ``total`` no-op jobs in batches of ``batch``; returns jobs/s."""
    start = time.perf_counter()
    for offset in range(0, total, batch):
        specs = [
            resources_pb2.JobSpec(job_type=job_type, payload=_payload(offset + i))
            for i in range(min(batch, total - offset))
        ]
        await stub.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=specs), metadata=md)
    return total / (time.perf_counter() - start)


async def fresh_database(prefix: str) -> tuple[str, str]:
    """A new, migrated database with the bench tenant: (url, name); the caller drops it."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = create_database(ADMIN_URL, name)
    await migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (TENANT,))
    return url, name


@dataclass
class E2eRun:
    """One burn-down: its rates and where its CPU went (groups' CPU seconds over the
    window, and PostgreSQL's top statements)."""

    enqueue: float
    rate: float
    seconds: float
    cpu: dict[str, float]
    # Read before the run's database is dropped: pg_stat_statements finds a database's
    # statements by its oid, which a dropped database no longer has.
    top_statements: list[Statement]
    audit_catchup_s: float | None = None  # last completion -> every event chained


async def e2e_run(
    md, total: int, ratelimit: str, sdk: Sdk, leases_replicas: int = 1, audit: bool = False
) -> E2eRun:
    """One burn-down by ``sdk``'s workers on a fresh database (so no run sees another's
    rows), served by ``leases_replicas`` leases processes: enqueue and e2e jobs/s, and the
    CPU of each process group over the burn-down's window."""
    url, name = await fresh_database("orch_bench_e2e")
    stack = Stack(url, ratelimit=ratelimit, leases_replicas=leases_replicas, audit=audit)
    workers: list[subprocess.Popen[bytes]] = []
    sampler: CpuSampler | None = None
    try:
        stack.wait_serving()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports['scheduler']}") as channel:
            stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
            enqueue = await bench_enqueue(stub, md, "bench.noop", total)
        statements = StatementTotals(ADMIN_URL, name)
        workers = start_workers(stack.leases_target, "bench.noop", WORKER_PROCESSES, argv=sdk.argv)
        pids = [p.pid for p in stack.procs]
        groups = {"scheduler": pids[:1], "leases": pids[-leases_replicas:]}
        if audit:
            groups["audit"] = [pids[1]]
        groups["workers"] = [w.pid for w in workers]
        sampler = CpuSampler(groups).start()
        catchup = None
        with psycopg.connect(url, autocommit=True) as db:
            wait_done(db, "bench.noop", total, 600)
            sampler.stop()
            first_lease, last_done = e2e_window(db, "bench.noop", total)
            if audit:
                catchup = chain_catchup_s(db, last_done, 120)
        seconds = (last_done - first_lease).total_seconds()
        cpu = sampler.between(first_lease.timestamp(), last_done.timestamp())
        return E2eRun(enqueue, total / seconds, seconds, cpu, statements.top(12), catchup)
    finally:
        if sampler is not None:
            sampler.stop()
        stop_workers(workers)
        stack.stop()
        drop_database(ADMIN_URL, name)


def _median_run(runs: list[E2eRun]) -> E2eRun:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


async def bench_e2e(md, total: int, rounds: int, sdks: list[Sdk]) -> float:
    """Burn-downs of ``total`` no-op jobs by 4 worker processes x 50 of each SDK. The first
    SDK (the fastest, Go, unless told otherwise) gives the headline ``e2e_jobs_per_s`` and
    runs with leasing rate limits on (the default: every lease spends a token of its
    {tenant, host} bucket in Redis; unconfigured buckets do not bind) and off, in ABBA order
    (off-on, on-off, ...) so neither mode always runs second: ``ratelimit_overhead_pct``.
    Every other SDK runs ``rounds`` times with rate limits on: ``e2e_jobs_per_s_<sdk>``.
    Medians; each SDK's median run also prints its CPU budget. Returns the headline."""
    headline, *others = sdks
    runs: dict[str, list[E2eRun]] = {"on": [], "off": []}
    for round_ in range(rounds):
        for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
            runs[mode].append(await e2e_run(md, total, mode, headline))
    on = statistics.median(r.rate for r in runs["on"])
    off = statistics.median(r.rate for r in runs["off"])
    enqueue = [r.enqueue for r in runs["on"] + runs["off"]]
    note(f"e2e_jobs_per_s: {headline.name} SDK workers")
    figure("enqueue_jobs_per_s", statistics.median(enqueue), "jobs/s")
    figure("e2e_jobs_per_s", on, "jobs/s")
    figure(f"e2e_jobs_per_s_{headline.name}", on, "jobs/s")
    figure("e2e_jobs_per_s_ratelimit_off", off, "jobs/s")
    figure("ratelimit_overhead_pct", (off - on) / off * 100, "%")
    print_budget(_median_run(runs["on"]), total, "")
    replicated = [await e2e_run(md, total, "on", headline, 2) for _ in range(rounds)]
    figure("e2e_jobs_per_s_2_leases", statistics.median(r.rate for r in replicated), "jobs/s")
    chained = [await e2e_run(md, total, "on", headline, audit=True) for _ in range(rounds)]
    figure("e2e_jobs_per_s_with_audit", statistics.median(r.rate for r in chained), "jobs/s")
    catchups = [r.audit_catchup_s for r in chained if r.audit_catchup_s is not None]
    figure("audit_chain_catchup_s", statistics.median(catchups), "s")
    for sdk in others:
        sdk_runs = [await e2e_run(md, total, "on", sdk) for _ in range(rounds)]
        figure(f"e2e_jobs_per_s_{sdk.name}", statistics.median(r.rate for r in sdk_runs), "jobs/s")
        print_budget(_median_run(sdk_runs), total, f"_{sdk.name}")
    return on


def print_budget(run: E2eRun, jobs: int, suffix: str) -> None:
    """The CPU budget per job of one burn-down (figures ``cpu_us_per_job_<group><suffix>``)
    and PostgreSQL's top statements in it."""
    for name, value in budget_figures(run.cpu, jobs, run.seconds).items():
        figure(name + suffix, value, "%" if name.endswith("_pct") else "us/job")
    top = run.top_statements
    if top:
        note(f"PostgreSQL's top statements over a burn-down{suffix} ({run.rate:.0f} jobs/s):")
        for line in describe_statements(top, jobs).splitlines():
            note(line)
    else:
        note(
            "no statement table: pg_stat_statements is not readable or recorded nothing for"
            " the run's database; make services preloads it on a new machine, an existing"
            " cluster needs one restart"
        )


def chain_catchup_s(db: psycopg.Connection, last_done: datetime, timeout_s: float) -> float:
    """Seconds from the last completion until the audit chain has linked every event."""
    (target,) = db.execute("SELECT coalesce(max(seq), 0) FROM orchestrator.events").fetchone()
    deadline = time.monotonic() + timeout_s
    while True:
        row = db.execute("SELECT seq, updated_at FROM orchestrator.audit_cursor").fetchone()
        if row and row[0] >= target:  # updated_at: when the chainer linked up to that seq
            return max(0.0, (row[1] - last_done).total_seconds())
        if time.monotonic() > deadline:
            raise RuntimeError(f"the audit chain did not reach seq {target} in {timeout_s}s")
        time.sleep(0.02)


# Whether any job of a type is still queued or leased: two probes of the partial indexes
# that hold only such jobs (jobs_tenant_queued_type, jobs_lease_expiry), so a poll costs the
# same however many jobs the table holds.
OPEN_JOBS = """
SELECT EXISTS (SELECT 1 FROM orchestrator.jobs
                WHERE job_type = %(job_type)s AND state IN ('pending', 'ready'))
    OR EXISTS (SELECT 1 FROM orchestrator.jobs
                WHERE job_type = %(job_type)s AND state = 'leased')
"""


def wait_done(db: psycopg.Connection, job_type: str, total: int, timeout_s: float) -> None:
    """Waits until no job of ``job_type`` is queued or leased, then checks that ``total``
    succeeded.

    It used to count the succeeded jobs every 0.1 s: on a 1,000,000-job backlog each count
    took ~0.5 s, so PostgreSQL spent most of a core on the bench's own polling, inside the
    window whose CPU per job the bench reports.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        with db.transaction():
            # the partial indexes, whatever the statistics say mid-burn-down
            db.execute("SET LOCAL enable_seqscan = off")
            row = db.execute(OPEN_JOBS, {"job_type": job_type}).fetchone()
        if not (row and row[0]):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    (done,) = db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE job_type = %s AND state = 'succeeded'",
        (job_type,),
    ).fetchone()
    if done < total:
        raise RuntimeError(f"only {done}/{total} {job_type} jobs finished in {timeout_s}s")


def e2e_window(db: psycopg.Connection, job_type: str, total: int) -> tuple[datetime, datetime]:
    """The burn-down's window in the ledger: first lease to last completion."""
    (first_lease, last_done, succeeded_events) = db.execute(
        "SELECT min(occurred_at) FILTER (WHERE type = 'job.leased'),"
        "       max(occurred_at) FILTER (WHERE type = 'job.succeeded'),"
        "       count(*) FILTER (WHERE type = 'job.succeeded')"
        "  FROM orchestrator.events WHERE job_type = %s",
        (job_type,),
    ).fetchone()
    if succeeded_events != total:
        raise RuntimeError(f"{succeeded_events} job.succeeded events for {total} jobs")
    return first_lease, last_done


async def bench_latency(stub, md, db: psycopg.Connection, job_type: str) -> None:
    """Offers LATENCY_RATE_PER_S jobs/s in small batches every 20 ms for LATENCY_SECONDS."""
    per_tick = LATENCY_RATE_PER_S // 50
    ticks = LATENCY_SECONDS * 50
    start = time.perf_counter()
    for tick in range(ticks):
        specs = [
            resources_pb2.JobSpec(job_type=job_type, payload=_payload(i)) for i in range(per_tick)
        ]
        await stub.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=specs), metadata=md)
        delay = start + (tick + 1) * 0.02 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    wait_done(db, job_type, per_tick * ticks, 60)
    latencies = [
        row[0]
        for row in db.execute(
            "SELECT extract(epoch FROM leased_at - created_at) * 1000 FROM orchestrator.jobs"
            " WHERE job_type = %s",
            (job_type,),
        ).fetchall()
    ]
    q = statistics.quantiles([float(x) for x in latencies], n=100)
    figure("start_latency_p50_ms", q[49], "ms")
    figure("start_latency_p99_ms", q[98], "ms")


async def bench_dag(stub, md, runs: int) -> None:
    start = time.perf_counter()
    jobs = 0
    for r in range(runs):
        specs = [resources_pb2.JobSpec(key=f"a{i}", job_type=f"dag.{r}.a") for i in range(100)]
        specs += [
            resources_pb2.JobSpec(key=f"b{i}", job_type=f"dag.{r}.b", depends_on=[f"a{i % 100}"])
            for i in range(300)
        ]
        specs += [
            resources_pb2.JobSpec(
                key=f"c{i}", job_type=f"dag.{r}.c", depends_on=[f"b{i % 300}", f"b{(i + 1) % 300}"]
            )
            for i in range(600)
        ]
        await stub.CreateRun(scheduler_pb2.CreateRunRequest(jobs=specs), metadata=md)
        jobs += len(specs)
    figure("dag_create_jobs_per_s", jobs / (time.perf_counter() - start), "jobs/s")


async def bench_acquire() -> None:
    import redis.asyncio as aioredis

    from orchestrator_redis import BucketStore, acquire_decisions_per_s

    client = aioredis.from_url(os.environ.get("ORCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        store = BucketStore(client, prefix=f"orch:bench:{uuid.uuid4().hex[:8]}:")
        rate = await acquire_decisions_per_s(store, n_keys=1000, batch=100, seconds=3.0)
        figure("ratelimit_acquire_decisions_per_s", rate, "decisions/s")
    finally:
        await client.aclose()


async def run(args: argparse.Namespace) -> dict[str, float]:
    ours: dict[str, float] = {}
    stack: Stack | None = None
    workers: list[subprocess.Popen[bytes]] = []
    token = mint_dev_token(SECRET, "bench", [TENANT], ["orch:read", "orch:operate"])
    md = (("authorization", f"Bearer {token}"),)
    sdks = sdk_workers(args.sdks.split(","))
    ours["e2e"] = await bench_e2e(md, args.jobs, args.e2e_rounds, sdks)
    url, name = await fresh_database("orch_bench")
    try:
        stack = Stack(url)
        stack.wait_serving()
        leases_target = f"127.0.0.1:{stack.ports['leases']}"
        db = psycopg.connect(url, autocommit=True)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports['scheduler']}") as channel:
            stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
            workers = start_workers(leases_target, "bench.latency", WORKER_PROCESSES)
            await asyncio.sleep(3)  # let every worker connect before offering load
            await bench_latency(stub, md, db, "bench.latency")
            stop_workers(workers)
            workers = []
            await bench_dag(stub, md, 3)
        db.close()
        await bench_acquire()
    finally:
        if workers:
            stop_workers(workers)
        if stack is not None:
            stack.stop()
        drop_database(ADMIN_URL, name)
    return ours


def convergence() -> None:
    """Prints the ratelimit_convergence_* figures (one run of the scenario)."""
    import logging

    from bench.ratelimit_convergence import convergence_figures

    # Each 429 is the scenario working, not news: the SDK would log thousands of them.
    logging.getLogger("stella_orchestrator.worker").setLevel(logging.ERROR)
    redis_url = os.environ.get("ORCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    for name, (value, unit) in asyncio.run(convergence_figures(ADMIN_URL, redis_url)).items():
        figure(name, value, unit)
    from bench.ratelimit_grid import describe, figures_of, run_grid

    results = asyncio.run(run_grid(redis_url))
    print(describe(results), file=sys.stderr)
    for name, (value, unit) in figures_of(results).items():
        figure(name, value, unit)


def main() -> None:
    parser = argparse.ArgumentParser(description="Stella Orchestrator benchmarks")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument(
        "--e2e-rounds",
        type=int,
        default=4,
        help="burn-downs per mode (rate limiting on / off, ABBA order); medians are printed",
    )
    parser.add_argument(
        "--sdks",
        default="go,python,rust",
        help="worker SDKs of the burn-downs, the headline (e2e_jobs_per_s) first",
    )
    parser.add_argument(
        "--skip-convergence", action="store_true", help="leave the rate-limit convergence run out"
    )
    parser.add_argument(
        "--skip-backlog", action="store_true", help="leave the backlog burn-downs out"
    )
    parser.add_argument(
        "--skip-claim-cost",
        action="store_true",
        help="leave the claim-cost scenarios (1k/1m ready, old table, 1,000 tenants) out",
    )
    parser.add_argument(
        "--skip-idle", action="store_true", help="leave the 1,000 idle Work streams out"
    )
    parser.add_argument(
        "--skip-sse", action="store_true", help="leave the 500-stream SSE load test out"
    )
    parser.add_argument(
        "--only-convergence",
        action="store_true",
        help="run the rate-limit convergence scenario alone (its figures only)",
    )
    args = parser.parse_args()
    if args.only_convergence:
        convergence()
        return
    ours = asyncio.run(run(args))
    if not args.skip_backlog:
        from bench.backlog import backlog_figures

        sizes = [20_000, 100_000]
        if os.environ.get("BENCH_BACKLOG_1M") == "1":
            sizes.append(1_000_000)
        backlog_figures(sizes)
        backlog_figures([100_000], history=1_000_000)
        backlog_figures([100_000], tenants=1_000)
    if not args.skip_sse:
        from bench.sse_load import print_figures, sse_load_figures

        print_figures(asyncio.run(sse_load_figures(500, 40, 30)))
    if not args.skip_idle:
        from bench.idle_streams import idle_stream_figures
        from bench.idle_streams import print_figures as print_idle

        print_idle(asyncio.run(idle_stream_figures(1000)))
    if not args.skip_claim_cost:
        from bench.claim_cost import SCENARIOS, claim_cost_figures

        claim_cost_figures(list(SCENARIOS))
    if not args.skip_convergence:
        convergence()
    if args.skip_peers:
        return
    from bench.peers import run_peers

    peers = run_peers(ADMIN_URL, args.jobs)
    for name, value in peers.items():
        figure(name, value, "jobs/s")
    for name, value in peers.items():
        if value > 0:
            peer = name.removeprefix("peer_").removesuffix("_jobs_per_s")
            figure(f"ratio_vs_{peer}", ours["e2e"] / value, "x")


if __name__ == "__main__":
    main()
