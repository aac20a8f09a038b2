"""Rate-limit convergence: how close the adaptive buckets get to upstream limits nobody told
the orchestrator — the scenario, shared by the end-to-end test and ``make bench``.

Three simulated upstream hosts allow 40, 80 and 120 requests/s (a token bucket, burst equal
to the rate) and answer 429 + ``Retry-After`` (whole seconds, at least 1, as HTTP defines it)
beyond that. 3,000 jobs (1,000 per host) run through a real scheduler, the leases service
in-process with rate limiting ON (real Redis, fresh key prefix) and SDK workers whose handler
calls the job's source once and maps 429 → ``UpstreamThrottled``. The orchestrator is NOT
told the rates and starts from the DEFAULT configuration (``ORCH_RATELIMIT_DEFAULT_BUCKET=none``:
nothing binds), so the per-host buckets must learn them from 429 feedback alone (the rate
learnt from the goodput before each 429, one Retry-After pause per host, slow probing;
docs/ratelimits.md). This is the real-services run; ``bench/ratelimit_grid.py`` runs the
same code on a simulated clock over a grid of 36 hosts.

:func:`run_scenario` runs it once and returns what happened (the upstream's log of answers,
the ledger, the ``throttles`` rows and every host bucket's state as read from Redis at the
end, before the tenant's buckets are purged). ``tests/e2e/test_ratelimit_convergence.py``
asserts the mechanism on it, which holds however fast the machine; how well it converges
depends on the machine's speed, so that is measured here as ``make bench`` figures
(``python -m bench --only-convergence`` runs just these), ``name value unit``:

* ``ratelimit_convergence_429_share_pct``        429s among all upstream calls after 10 s
* ``ratelimit_convergence_429_share_<host>_pct`` the same per host
* ``ratelimit_convergence_slowdown_x``           burn-down time / ideal (slowest host's jobs / R)

The clock of the figures starts at the first upstream call.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import psycopg
import redis.asyncio
from google.protobuf import duration_pb2, struct_pb2

from orchestrator_grpckit import ServiceConfig, mint_dev_token
from orchestrator_leases import LeaseSettings, build_app
from orchestrator_redis import NON_BINDING, BucketKey, BucketState, BucketStore
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2, scheduler_pb2_grpc
from stella_orchestrator.worker import Job, UpstreamThrottled, UpstreamUnavailable, Worker

RATES = {"slow": 40.0, "mid": 80.0, "fast": 120.0}  # requests/s the upstream allows per host
JOBS_PER_HOST = 1000
# What the orchestrator knows up front: nothing (the store default, which never binds).
DEFAULT_BUCKET = NON_BINDING
WORKERS = 2
CONCURRENCY = 100
MAX_ATTEMPTS = 20
WARMUP_S = 10.0
# Only catches a hang: ~25 s is ideal here, a loaded 2-core machine may take several times it.
RUN_TIMEOUT_S = 600.0
IDEAL_S = JOBS_PER_HOST / min(RATES.values())

# One upstream answer: (CLOCK_MONOTONIC seconds, host label, HTTP status, job id).
Answer = tuple[float, str, int, str]


# ---------------------------------------------------------------------------- upstream


@dataclass
class _HostBucket:
    rate: float
    tokens: float
    updated: float = field(default_factory=time.monotonic)

    def take(self, now: float) -> float:
        """0 when a request may go now, else seconds until one may."""
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class _Upstream:
    """The server side (runs in its own process): ``GET /{host}/item?job=ID`` answers 200, or
    429 + ``Retry-After`` beyond the host's rate; ``GET /_log`` returns every answer so far as
    JSON ``[monotonic time, host, status, job id]`` (CLOCK_MONOTONIC is system-wide)."""

    def __init__(self, rates: dict[str, float]) -> None:
        self.buckets = {h: _HostBucket(r, r) for h, r in rates.items()}
        self.log: list[tuple[float, str, int, str]] = []

    def answer(self, target: str) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        host = parts.path.strip("/").split("/")[0]
        if host == "_log":
            return 200, {}, json.dumps(self.log).encode()
        job = parse_qs(parts.query).get("job", [""])[0]
        now = time.monotonic()
        bucket = self.buckets.get(host)
        if bucket is None:
            self.log.append((now, host, 404, job))
            return 404, {}, b'{"error":"unknown host"}'
        wait = bucket.take(now)
        if wait > 0:
            self.log.append((now, host, 429, job))
            # Retry-After is delta-seconds (an integer) in HTTP: at least 1.
            return 429, {"Retry-After": str(max(1, math.ceil(wait)))}, b'{"error":"slow down"}'
        self.log.append((now, host, 200, job))
        return 200, {}, b'{"ok":true}'

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # HTTP/1.1 keep-alive; requests carry no body
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                code, headers, body = self.answer(target)
                lines = [f"HTTP/1.1 {code} {_REASONS[code]}", "Content-Type: application/json"]
                lines += [f"{k}: {v}" for k, v in headers.items()]
                lines.append(f"Content-Length: {len(body)}")
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}


def _serve_upstream(rates: dict[str, float], ports: Any) -> None:
    """Entry point of the upstream process."""

    async def main() -> None:
        upstream = _Upstream(rates)
        server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0, backlog=1024)
        ports.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


@contextmanager
def upstream_server(rates: dict[str, float]) -> Iterator[str]:
    """Runs the simulated upstream in its own process (so serving it costs the test's event
    loop nothing) and yields its base URL."""
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    process = ctx.Process(target=_serve_upstream, args=(rates, ports), daemon=True)
    process.start()
    try:
        yield f"http://127.0.0.1:{ports.get(timeout=30)}"
    finally:
        process.terminate()
        process.join(10)
        ports.close()
        ports.join_thread()


class HttpClient:
    """A minimal HTTP/1.1 GET client with a keep-alive connection pool.

    httpx costs several ms of CPU per request at 200 concurrent connections (measured ~200
    requests/s on this event loop), which would make the test's own process, not the
    rate limits, the bottleneck; this costs a fraction of that."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._all: list[asyncio.StreamWriter] = []

    async def get(self, target: str) -> tuple[int, dict[str, str], bytes]:
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port)
            self._all.append(writer)
        request = f"GET {target} HTTP/1.1\r\nHost: {self._host}\r\n\r\n"
        writer.write(request.encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self._idle.append((reader, writer))
        return status, headers, body

    async def aclose(self) -> None:
        for writer in self._all:
            writer.close()
        self._idle.clear()


# ---------------------------------------------------------------------------- orchestrator


def _config(service: str, database_url: str, secret: str, redis_url: str) -> ServiceConfig:
    return ServiceConfig(
        service_name=service,
        grpc_port=0,
        metrics_port=None,
        database_url=database_url,
        redis_url=redis_url,
        auth_hs256_secret=secret,
        shutdown_grace_s=1.0,
    )


@asynccontextmanager
async def scheduler_service(database_url: str, secret: str, redis_url: str) -> AsyncIterator[str]:
    """The scheduler in-process on a free port (for callers without one of their own)."""
    from orchestrator_scheduler import build_service

    config = _config("scheduler", database_url, secret, redis_url)
    async with build_service(config, schedule_firing=False) as service:
        await service.start()
        try:
            yield f"127.0.0.1:{service.port}"
        finally:
            await service.stop()


@asynccontextmanager
async def _leases(
    database_url: str, secret: str, redis_url: str, prefix: str
) -> AsyncIterator[str]:
    """The leases service with rate limiting on (its own bucket store on ``prefix``, the
    default adaptive policy), on a free port."""
    settings = LeaseSettings(
        lease_ttl_s=30,
        watchdog_interval_s=0.5,
        ratelimit=True,
        ratelimit_key_prefix=prefix,
    )
    async with build_app(
        _config("leases", database_url, secret, redis_url),
        settings=settings,
        watchdog_lock_key=random.randrange(1, 2**62),
    ) as app:
        await app.service.start()
        # Only catches a listener that never connects; a loaded machine may take seconds.
        await asyncio.wait_for(app.listener.connected.wait(), 60)
        try:
            yield f"127.0.0.1:{app.service.port}"
        finally:
            await app.service.stop()


class _Operator:
    """A SchedulerService stub that sends the operator's bearer token with every call."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self._stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        self._md = (("authorization", f"Bearer {token}"),)

    async def create_source(self, request: Any) -> Any:
        return await self._stub.CreateSource(request, metadata=self._md)

    async def submit_jobs(self, request: Any) -> Any:
        return await self._stub.SubmitJobs(request, metadata=self._md)


async def _create_sources(operator: _Operator, base_url: str, suffix: str) -> dict[str, str]:
    """One source per upstream host; its base URL names the host's path on the upstream.
    Returns label → source id."""
    sources = {}
    for label in RATES:
        reply = await operator.create_source(
            scheduler_pb2.CreateSourceRequest(
                source=resources_pb2.Source(
                    name=f"{label}-{suffix}",
                    source_type="http",
                    host=f"{label}-{suffix}.example.org",
                    base_url=f"{base_url}/{label}",
                    enabled=True,
                ),
                operator=common_pb2.OperatorContext(reason="rate-limit convergence scenario"),
            )
        )
        sources[label] = reply.source.id
    return sources


async def _submit(operator: _Operator, job_type: str, sources: dict[str, str]) -> list[str]:
    """JOBS_PER_HOST jobs per source, hosts interleaved; enough attempts that 429s never
    dead-letter a job."""
    policy = common_pb2.RetryPolicy(
        max_attempts=MAX_ATTEMPTS,
        initial_backoff=duration_pb2.Duration(nanos=100_000_000),
        max_backoff=duration_pb2.Duration(seconds=1),
        backoff_multiplier=2.0,
    )
    specs = []
    for i in range(JOBS_PER_HOST):
        for source_id in sources.values():
            payload = struct_pb2.Struct()
            payload.update({"n": i})
            specs.append(
                resources_pb2.JobSpec(
                    job_type=job_type, source_id=source_id, payload=payload, retry_policy=policy
                )
            )
    job_ids: list[str] = []
    for start in range(0, len(specs), 1000):
        reply = await operator.submit_jobs(
            scheduler_pb2.SubmitJobsRequest(jobs=specs[start : start + 1000])
        )
        job_ids += [j.id for j in reply.jobs]
    return job_ids


async def _run_workers(
    database_url: str,
    target: str,
    token: str,
    tenant: str,
    job_type: str,
    paths: dict[str, str],
    http: HttpClient,
    store: BucketStore,
) -> dict[str, float]:
    """SDK workers whose handler GETs the job's source once (429 → UpstreamThrottled with the
    Retry-After), until every job of the tenant has ended. Meanwhile reads the tenant's
    buckets from Redis every poll; returns the lowest effective refill seen per host.

    Raises:
        TimeoutError: jobs were still open after RUN_TIMEOUT_S (a hang, not slowness).
    """

    async def fetch(job: Job) -> dict[str, object]:
        status, headers, _ = await http.get(f"{paths[job.source_id]}/item?job={job.id}")
        if status == 429:
            retry_after = float(headers.get("retry-after", "1"))
            raise UpstreamThrottled("upstream throttled", retry_after_s=retry_after)
        if status != 200:
            raise UpstreamUnavailable(f"upstream answered {status}")
        return {"ok": True}

    workers = [
        Worker(
            target,
            token=token,
            tenant=tenant,
            concurrency=CONCURRENCY,
            worker_id=f"rlconv-{i}",
            drain_timeout_s=5,
        )
        for i in range(WORKERS)
    ]
    for worker in workers:
        worker.add_handler(job_type, fetch)
    running = [asyncio.create_task(w.run()) for w in workers]
    lowest: dict[str, float] = {}
    try:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while True:
                # A throttle keeps a bucket's rate cut for its pause (>= 1 s: Retry-After is
                # whole seconds) plus the additive recovery (>= 5 s back from half at the
                # default policy), so a poll every fraction of a second cannot miss it.
                for state in await store.list_states(tenant, now=time.time()):
                    host = state.key.host
                    lowest[host] = min(lowest.get(host, math.inf), state.effective_refill_per_s)
                cur = await db.execute(
                    "SELECT count(*) FROM orchestrator.jobs"
                    " WHERE tenant = %s AND state NOT IN ('succeeded', 'dead')",
                    (tenant,),
                )
                row = await cur.fetchone()
                if row is not None and row[0] == 0:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{row} jobs not done in {RUN_TIMEOUT_S} s")
                await asyncio.sleep(0.25)
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.wait_for(asyncio.gather(*running), 60)
    return lowest


@dataclass
class ScenarioRun:
    """What one run did.

    Attributes:
        tenant: the run's own tenant.
        job_ids: every job submitted.
        hosts: upstream label (``slow``, ``mid``, ``fast``) → source host name.
        log: every upstream answer, sorted by time.
        buckets: host name → its bucket as read from Redis after the leases service stopped
            (before the purge). Additive recovery may have brought a host that stopped being
            throttled back to the default rate by then.
        lowest_refill: host name → the lowest effective refill read from Redis while the
            workers ran.
        throttled: host name → the lowest effective refill recorded in its
            ``orchestrator.throttles`` rows of origin ``upstream_429`` (hosts without one are
            absent): what Redis answered each throttle with.
        ledger: job states, ``job.succeeded`` events, dead letters and the most attempts.
    """

    tenant: str
    job_ids: list[str]
    hosts: dict[str, str]
    log: list[Answer]
    buckets: dict[str, BucketState]
    lowest_refill: dict[str, float]
    throttled: dict[str, float]
    ledger: dict[str, Any]


async def run_scenario(
    database_url: str, scheduler_target: str, secret: str, redis_url: str
) -> ScenarioRun:
    """Runs the scenario once on a new tenant of ``database_url`` (migrated), against the
    scheduler at ``scheduler_target`` (accepting HS256 tokens of ``secret``); starts its own
    upstream, leases service and workers, and purges its buckets from Redis at the end."""
    suffix = uuid.uuid4().hex[:8]
    tenant = f"rl-conv-{suffix}"
    job_type = f"rlconv.fetch.{suffix}"
    prefix = f"orch:rlconv:{uuid.uuid4().hex}:"
    hosts = {label: f"{label}-{suffix}.example.org" for label in RATES}
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        await db.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (tenant,))
    client = redis.asyncio.Redis.from_url(redis_url)
    # Read with the leases service's default (the store default travels with each call).
    store = BucketStore(client, prefix=prefix, default=DEFAULT_BUCKET)
    try:
        with upstream_server(RATES) as base_url:
            async with grpc.aio.insecure_channel(scheduler_target) as channel:
                operator = _Operator(
                    channel,
                    mint_dev_token(secret, "rlconv", [tenant], ["orch:read", "orch:operate"]),
                )
                sources = await _create_sources(operator, base_url, suffix)
                job_ids = await _submit(operator, job_type, sources)
            paths = {source_id: f"/{label}" for label, source_id in sources.items()}
            token = mint_dev_token(secret, "fleet", [tenant], ["orch:work"])
            http = HttpClient(base_url)
            try:
                async with _leases(database_url, secret, redis_url, prefix) as target:
                    lowest = await _run_workers(
                        database_url, target, token, tenant, job_type, paths, http, store
                    )
                _, _, body = await http.get("/_log")
            finally:
                await http.aclose()
        # Read before the purge below: the state the feedback loop left in each host's bucket.
        now = time.time()
        buckets = {h: await store.state(BucketKey(tenant, h), now=now) for h in hosts.values()}
    finally:
        try:
            await store.purge_tenant(tenant)
        finally:
            await client.aclose()
    log: list[Answer] = sorted((t, h, code, job) for t, h, code, job in json.loads(body))
    return ScenarioRun(
        tenant=tenant,
        job_ids=job_ids,
        hosts=hosts,
        log=log,
        buckets=buckets,
        lowest_refill=lowest,
        throttled=await asyncio.to_thread(_throttled_hosts, database_url, tenant),
        ledger=await asyncio.to_thread(_ledger, database_url, tenant),
    )


def _throttled_hosts(database_url: str, tenant: str) -> dict[str, float]:
    with psycopg.connect(database_url, autocommit=True) as db:
        rows = db.execute(
            "SELECT host, min(effective_refill_per_second) FROM orchestrator.throttles"
            " WHERE tenant = %s AND origin = 'upstream_429' GROUP BY host",
            (tenant,),
        ).fetchall()
    return {row[0]: float(row[1]) for row in rows}


def _ledger(database_url: str, tenant: str) -> dict[str, Any]:
    with psycopg.connect(database_url, autocommit=True) as db:
        states = dict(
            db.execute(
                "SELECT state, count(*) FROM orchestrator.jobs WHERE tenant = %s GROUP BY state",
                (tenant,),
            ).fetchall()
        )
        row = db.execute(
            "SELECT count(*), count(DISTINCT job_id) FROM orchestrator.events"
            " WHERE tenant = %s AND type = 'job.succeeded'",
            (tenant,),
        ).fetchone()
        dead = db.execute(
            "SELECT count(*) FROM orchestrator.dead_letter WHERE tenant = %s", (tenant,)
        ).fetchone()
        attempts = db.execute(
            "SELECT max(attempt) FROM orchestrator.jobs WHERE tenant = %s", (tenant,)
        ).fetchone()
    if row is None or dead is None or attempts is None:  # aggregates always answer a row
        raise RuntimeError("an aggregate query returned no row")
    return {
        "states": states,
        "succeeded_events": row[0],
        "succeeded_jobs": row[1],
        "dead_letters": dead[0],
        "most_attempts": attempts[0],
    }


# ---------------------------------------------------------------------------- figures


def host_figures(log: list[Answer]) -> dict[str, dict[str, float]]:
    """Per host label and ``all``: calls, 429s and their share before and after WARMUP_S,
    and when the last success came (``done_s``); the clock starts at the first call."""
    t0 = log[0][0]
    figures: dict[str, dict[str, float]] = {}
    for host in [*RATES, "all"]:
        rows = [r for r in log if host in ("all", r[1])]
        early = [r for r in rows if r[0] < t0 + WARMUP_S]
        late = [r for r in rows if r[0] >= t0 + WARMUP_S]
        ok = [r[0] for r in rows if r[2] == 200]
        figures[host] = {
            "calls": len(rows),
            "429_first_10s": sum(r[2] == 429 for r in early),
            "share_first_10s": sum(r[2] == 429 for r in early) / max(1, len(early)),
            "calls_after_10s": len(late),
            "429_after_10s": sum(r[2] == 429 for r in late),
            "share_after_10s": sum(r[2] == 429 for r in late) / max(1, len(late)),
            "done_s": (max(ok) - t0) if ok else float("nan"),
        }
    return figures


def describe(run: ScenarioRun) -> str:
    """A human-readable summary of a run (the test prints it)."""
    figures = host_figures(run.log)
    lines = [
        f"rate-limit convergence: total {figures['all']['done_s']:.2f} s, ideal {IDEAL_S:.2f} s"
    ]
    for host, f in figures.items():
        lines.append(
            f"  {host:>4} R={RATES.get(host, sum(RATES.values())):g}/s: calls {f['calls']:g}, "
            f"429 in the first {WARMUP_S:g} s {f['429_first_10s']:g} "
            f"({f['share_first_10s']:.1%}), after {f['429_after_10s']:g}/"
            f"{f['calls_after_10s']:g} ({f['share_after_10s']:.1%}),"
            f" last success at {f['done_s']:.2f} s"
        )
    for label, host in run.hosts.items():
        state = run.buckets[host]
        lines.append(
            f"  bucket {label}: effective refill {state.effective_refill_per_s:.1f}/s"
            f" of {state.refill_per_s:g}/s at the end,"
            f" lowest seen {run.lowest_refill.get(host, math.nan):.1f}/s,"
            f" lowest on a throttle {run.throttled.get(host, math.nan):.1f}/s"
        )
    lines.append(f"  ledger: {run.ledger}")
    return "\n".join(lines)


def figures_of(run: ScenarioRun) -> dict[str, tuple[float, str]]:
    """``{name: (value, unit)}`` of one run."""
    hosts = host_figures(run.log)
    figures = {
        "ratelimit_convergence_429_share_pct": (100 * hosts["all"]["share_after_10s"], "%"),
        "ratelimit_convergence_slowdown_x": (hosts["all"]["done_s"] / IDEAL_S, "x"),
    }
    for label in RATES:
        figures[f"ratelimit_convergence_429_share_{label}_pct"] = (
            100 * hosts[label]["share_after_10s"],
            "%",
        )
    return figures


async def convergence_figures(admin_url: str, redis_url: str) -> dict[str, tuple[float, str]]:
    """Runs the scenario once on a fresh database with its own scheduler; returns
    ``{name: (value, unit)}``.

    Raises:
        RuntimeError: the run did not do its work (a job not succeeded exactly once).
    """
    from orchestrator_pg import create_database, drop_database, migrate

    secret = f"bench-convergence-{uuid.uuid4().hex}"
    name = f"orch_bench_rlconv_{uuid.uuid4().hex[:8]}"
    url = create_database(admin_url, name)
    try:
        await migrate(url)
        async with scheduler_service(url, secret, redis_url) as target:
            run = await run_scenario(url, target, secret, redis_url)
    finally:
        drop_database(admin_url, name)
    if run.ledger["states"] != {"succeeded": len(run.job_ids)} or run.ledger["dead_letters"]:
        raise RuntimeError(f"the convergence run did not succeed every job: {run.ledger}")
    return figures_of(run)
