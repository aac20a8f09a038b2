"""Backlog burn-downs: the steady state, not the best case.

A backlog is queued on a fresh database *before* any worker connects, then burned by
``WORKER_PROCESSES`` SDK workers x ``WORKER_CONCURRENCY`` whose handlers take 20-60 ms, like
real work (no-op handlers finish before surplus leases can age and hide what a busy worker
sees). The figures come from the event history, so they say what the ledger saw:

- ``e2e_backlog_<n>_jobs_per_s``: jobs from the first lease to the last success, per second;
- ``backlog_<n>_max_gap_s``: the longest time between two consecutive successes;
- ``backlog_<n>_lease_expired``: leases the watchdog expired (each one a job run twice);
- ``backlog_<n>_peak_leases_per_worker``: the most leases any worker held at once (the
  capacity bound: never above ``WORKER_CONCURRENCY``);
- ``backlog_<n>_slot_share_pct``: the rate as a share of what the slots allow
  (slots ÷ mean handler time);
- ``backlog_<n>_cpu_busy_pct`` / ``_cpu_us_per_job``: the share of all cores the burn-down
  used (PostgreSQL, Redis, the services and the workers, from ``/proc``) and that CPU per
  job — near 100 % the machine, not the orchestrator's design, sets the rate.

``python -m bench.backlog 20000 100000`` runs the given sizes (``--history N``: on a database
that already holds N finished jobs; ``--tenants N``: the backlog spread over N tenants served
by a shared fleet); ``make bench`` runs 20,000 and 100,000, 100,000 on a table holding a
million finished jobs and 100,000 over 1,000 tenants (and 1,000,000 with
``BENCH_BACKLOG_1M=1``: about a quarter of an hour here).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

import grpc
import psycopg

from bench.__main__ import (
    ADMIN_URL,
    SECRET,
    TENANT,
    WORKER_CONCURRENCY,
    WORKER_PROCESSES,
    Stack,
    bench_enqueue,
    e2e_window,
    figure,
    fresh_database,
    note,
    start_workers,
    stop_workers,
    wait_done,
)
from bench.claim_cost import SEED_JOBS
from bench.cpu_budget import CpuSampler, budget_figures
from orchestrator_grpckit import mint_dev_token
from orchestrator_pg import drop_database
from stella.orchestrator.v1 import scheduler_pb2_grpc

JOB_TYPE = "bench.backlog"
MEAN_HANDLER_S = 0.040  # tests.e2e._worker_proc sleeps uniformly 20-60 ms


class LeaseEvent(NamedTuple):
    """One lease transition of the event history, in ``seq`` order."""

    job_id: str
    to_leased: bool  # ready → leased (else: leased → anything)
    worker_id: str


class Burndown(NamedTuple):
    jobs_per_s: float
    max_gap_s: float
    lease_expired: int
    peak_leases_per_worker: int
    succeeded_twice: int
    mean_lease_ms: float  # finished_at - leased_at: the handler and the ways there and back


def peak_leases(events: Iterable[LeaseEvent]) -> dict[str, int]:
    """The most leases each worker held at once.

    Replays the transitions in ``seq`` order. A slot is freed only after the lease that held
    it ended and committed, so the claim that reuses the slot writes a higher ``seq`` than
    the end of that lease: the replay never counts a lease twice.
    """
    holder: dict[str, str] = {}
    held: dict[str, int] = defaultdict(int)
    peak: dict[str, int] = defaultdict(int)
    for event in events:
        if event.to_leased:
            holder[event.job_id] = event.worker_id
            held[event.worker_id] += 1
            peak[event.worker_id] = max(peak[event.worker_id], held[event.worker_id])
        elif (worker := holder.pop(event.job_id, None)) is not None:
            held[worker] -= 1
    return dict(peak)


def lease_events(db: psycopg.Connection, job_type: str) -> list[LeaseEvent]:
    rows = db.execute(
        "SELECT job_id::text, to_state = 'leased', coalesce(data->>'worker_id', '')"
        "  FROM orchestrator.events"
        " WHERE job_type = %s AND (to_state = 'leased' OR from_state = 'leased')"
        " ORDER BY seq",
        (job_type,),
    ).fetchall()
    return [LeaseEvent(*row) for row in rows]


def burndown_from_history(db: psycopg.Connection, job_type: str, total: int) -> Burndown:
    """The figures of one burn-down, read from its event history."""
    done: list[datetime] = [
        r[0]
        for r in db.execute(
            "SELECT occurred_at FROM orchestrator.events"
            " WHERE job_type = %s AND type = 'job.succeeded' ORDER BY occurred_at",
            (job_type,),
        ).fetchall()
    ]
    (first_lease, expired, twice) = db.execute(
        "SELECT min(occurred_at) FILTER (WHERE type = 'job.leased'),"
        "       count(*) FILTER (WHERE type = 'job.lease_expired'),"
        "       count(*) FILTER (WHERE type = 'job.succeeded')"
        "         - count(DISTINCT job_id) FILTER (WHERE type = 'job.succeeded')"
        "  FROM orchestrator.events WHERE job_type = %s",
        (job_type,),
    ).fetchone()
    (mean_lease_ms,) = db.execute(
        "SELECT avg(extract(epoch FROM finished_at - leased_at)) * 1000"
        "  FROM orchestrator.jobs WHERE job_type = %s AND state = 'succeeded'",
        (job_type,),
    ).fetchone()
    if len(done) < total:
        raise RuntimeError(f"{len(done)} job.succeeded events for {total} jobs")
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(done)]
    peaks = peak_leases(lease_events(db, job_type))
    return Burndown(
        jobs_per_s=total / (done[-1] - first_lease).total_seconds(),
        max_gap_s=max(gaps, default=0.0),
        lease_expired=expired,
        peak_leases_per_worker=max(peaks.values(), default=0),
        succeeded_twice=twice,
        mean_lease_ms=float(mean_lease_ms or 0.0),
    )


def seed_history(url: str, finished: int) -> None:
    """``finished`` succeeded jobs of another type, written in bulk (triggers off: the
    history's events are not what the burn-down measures), then vacuumed and analysed as
    autovacuum would leave an old table."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE orchestrator.jobs DISABLE TRIGGER USER")
        try:
            conn.execute(
                SEED_JOBS,
                {
                    "tenants": [TENANT],
                    "job_type": "bench.history",
                    "state": "succeeded",
                    "n": finished,
                },
            )
        finally:
            conn.execute("ALTER TABLE orchestrator.jobs ENABLE TRIGGER USER")
        conn.execute("VACUUM ANALYZE orchestrator.jobs")


async def burndown(
    total: int, *, history: int = 0, tenants: int = 1, workers: int = WORKER_PROCESSES
) -> tuple[Burndown, dict[str, float]]:
    """Queues ``total`` jobs on a fresh database, then burns them with busy workers; returns
    what the history shows and the CPU seconds each process group used over the burn-down.

    ``history``: finished jobs the database holds before the backlog is queued.
    ``tenants``: the backlog is spread evenly over that many tenants, served by a shared
    fleet (a ``*`` worker token, no tenant header) when more than one.
    ``workers``: SDK worker processes of ``WORKER_CONCURRENCY`` slots each.
    """
    url, name = await fresh_database("orch_bench_backlog")
    names = [TENANT] if tenants == 1 else [f"{TENANT}-t{i}" for i in range(tenants)]
    with psycopg.connect(url, autocommit=True) as conn:
        for tenant in names if tenants > 1 else []:
            conn.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (tenant,))
    if history:
        seed_history(url, history)
    stack = Stack(url)
    fleet: list[subprocess.Popen[bytes]] = []
    sampler: CpuSampler | None = None
    # A producer serving many tenants holds a platform token and names each tenant per call:
    # a token listing 1,000 tenant ids (~17 KB) exceeds gRPC's 16 KiB metadata limit.
    grants = names if tenants == 1 else ["*"]
    token = mint_dev_token(SECRET, "bench", grants, ["orch:read", "orch:operate"])
    try:
        stack.wait_serving()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports['scheduler']}") as channel:
            stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
            per_tenant = total // len(names)
            for tenant in names:
                md = (("authorization", f"Bearer {token}"), ("x-stella-tenant", tenant))
                await bench_enqueue(stub, md, JOB_TYPE, per_tenant)
        fleet = start_workers(
            f"127.0.0.1:{stack.ports['leases']}",
            JOB_TYPE,
            workers,
            module="tests.e2e._worker_proc",  # 20-60 ms handlers
            prefix="bench-busy-w",
            tenants=["*"] if tenants > 1 else None,
        )
        scheduler, leases = (p.pid for p in stack.procs)
        sampler = CpuSampler(
            {"scheduler": [scheduler], "leases": [leases], "workers": [w.pid for w in fleet]}
        ).start()
        with psycopg.connect(url, autocommit=True) as db:
            total = per_tenant * len(names)
            wait_done(db, JOB_TYPE, total, timeout_s=max(600, total / 100))
            sampler.stop()
            first_lease, last_done = e2e_window(db, JOB_TYPE, total)
            cpu = sampler.between(first_lease.timestamp(), last_done.timestamp())
            return burndown_from_history(db, JOB_TYPE, total), cpu
    finally:
        if sampler is not None:
            sampler.stop()
        stop_workers(fleet)
        stack.stop()
        drop_database(ADMIN_URL, name)


def label(total: int) -> str:
    return f"{total // 1_000_000}m" if total % 1_000_000 == 0 else f"{total // 1000}k"


def backlog_figures(
    sizes: Iterable[int], *, history: int = 0, tenants: int = 1, workers: int = WORKER_PROCESSES
) -> None:
    """Runs one burn-down per size (each on a fresh database) and prints its figures; with
    ``history``, ``tenants`` or another fleet size the figures' names say so (``100k_old``,
    ``100k_t1000``, ``20k_w1``)."""
    slots_allow = workers * WORKER_CONCURRENCY / MEAN_HANDLER_S
    for total in sizes:
        note(
            f"backlog burn-down of {total:,} jobs over {tenants:,} tenant(s), "
            f"{history:,} finished jobs before ({workers} workers x "
            f"{WORKER_CONCURRENCY}, 20-60 ms handlers)"
        )
        result, cpu = asyncio.run(
            burndown(total, history=history, tenants=tenants, workers=workers)
        )
        n = label(total) + ("_old" if history else "") + (f"_t{tenants}" if tenants > 1 else "")
        n += f"_w{workers}" if workers != WORKER_PROCESSES else ""
        figure(f"e2e_backlog_{n}_jobs_per_s", result.jobs_per_s, "jobs/s")
        figure(f"backlog_{n}_slot_share_pct", 100 * result.jobs_per_s / slots_allow, "%")
        figure(f"backlog_{n}_max_gap_s", result.max_gap_s, "s")
        figure(f"backlog_{n}_lease_expired", result.lease_expired, "leases")
        figure(f"backlog_{n}_succeeded_twice", result.succeeded_twice, "jobs")
        figure(f"backlog_{n}_peak_leases_per_worker", result.peak_leases_per_worker, "leases")
        # A slot is taken from the lease to the transaction applying its result: the 40 ms handler
        # and the rest (delivery, the result's way back, the completer's linger).
        figure(f"backlog_{n}_mean_lease_ms", result.mean_lease_ms, "ms")
        # Is the machine the limit? The share of all cores the burn-down used, and per job.
        budget = budget_figures(cpu, total, total / result.jobs_per_s)
        figure(f"backlog_{n}_cpu_busy_pct", budget["cpu_busy_pct"], "%")
        figure(f"backlog_{n}_cpu_us_per_job", budget["cpu_us_per_job_total"], "us/job")
        # Where it went: the workers share these cores here, not in a deployment.
        note(
            "cpu us/job: "
            + ", ".join(
                f"{key.removeprefix('cpu_us_per_job_')} {value:.0f}"
                for key, value in budget.items()
                if key.startswith("cpu_us_per_job_") and key != "cpu_us_per_job_total"
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="backlog burn-downs")
    parser.add_argument("sizes", type=int, nargs="*", default=[20_000])
    parser.add_argument("--history", type=int, default=0, help="finished jobs already held")
    parser.add_argument("--tenants", type=int, default=1, help="tenants sharing the backlog")
    parser.add_argument(
        "--workers",
        type=int,
        default=WORKER_PROCESSES,
        help=f"worker processes of {WORKER_CONCURRENCY} slots (a smaller fleet leaves the "
        "machine idle time: is the design or the machine the limit?)",
    )
    args = parser.parse_args()
    backlog_figures(args.sizes, history=args.history, tenants=args.tenants, workers=args.workers)


if __name__ == "__main__":
    main()
