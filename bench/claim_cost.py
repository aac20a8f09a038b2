"""The claim's cost against the shape of the queue (issue 13 item 3).

One claim statement (``job_claim_admitted``, through ``LeaseLedger.job_claim_admitted``) should
cost the same whether 1,000 or 1,000,000 jobs are ready, whether the table is young or holds
a million finished jobs, and whether the backlog belongs to 1 tenant or 1,000. Each scenario
gets a fresh database seeded in bulk (SQL, triggers off: seeding is not what is measured),
vacuumed and analysed as autovacuum would leave it, then ``CLAIMERS`` concurrent claimers
(two leases replicas, or one replica's two claims in flight) each claim ``BATCH`` jobs and
complete them in one call, while a producer keeps the backlog at its size (every completed
job is replaced by a new ready one), so the queue head churns as in a long burn-down.
No workers, no gRPC: the figures are the database's and the adapter's.

Figures, per scenario (``young_1k``, ``young_1m``, ``old_1k``, ``tenants_1000``):

- ``claim_<scenario>_p50_ms`` / ``_p95_ms`` / ``_p99_ms``: wall time of one claim call
  (``BATCH`` jobs);
- ``claim_<scenario>_jobs_per_s``: claim + complete loop throughput of the claimers;
- ``claim_<scenario>_enqueue_jobs_per_s``: ``SubmitJobs`` through a scheduler process
  (batches of 500, as ``enqueue_jobs_per_s``) into that queue afterwards;
- ``claim_p99_1m_vs_1k_x``: the 1,000,000-ready claim's p99 over the 1,000-ready one's.

``python -m bench.claim_cost`` runs all; ``python -m bench.claim_cost young_1m`` one.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import time
from dataclasses import dataclass

import grpc
import psycopg

from bench.__main__ import (
    ADMIN_URL,
    SECRET,
    TENANT,
    Stack,
    bench_enqueue,
    figure,
    fresh_database,
    note,
)
from orchestrator_core.clock import SystemClock
from orchestrator_grpckit import mint_dev_token
from orchestrator_pg import Completion, Database, LeaseLedger, TxContext, drop_database
from stella.orchestrator.v1 import scheduler_pb2_grpc

JOB_TYPE = "bench.claim"
BATCH = 50
CLAIMERS = 2
CLAIMS_PER_CLAIMER = 150
WARMUP_CLAIMS = 10
ENQUEUE_JOBS = 10_000

# A time-ordered uuid from SQL (the first 48 bits are milliseconds, like orchestrator_core's
# ids), so "oldest first" means what it means for submitted jobs.
SEED_JOBS = """
INSERT INTO orchestrator.jobs (id, tenant, job_type, state, reason, payload_digest,
    max_attempts, initial_backoff_s, max_backoff_s, backoff_multiplier, not_before,
    created_at, updated_at, finished_at)
SELECT (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
        || substr(md5(random()::text || g::text), 1, 20))::uuid,
       (%(tenants)s::text[])[1 + (g - 1) %% cardinality(%(tenants)s::text[])], %(job_type)s,
       %(state)s, %(state)s,
       'sha256:' || repeat('0', 64), 5, 1, 60, 2, now(), now(), now(),
       CASE WHEN %(state)s = 'succeeded' THEN now() END
  FROM generate_series(1, %(n)s) g
"""


@dataclass(frozen=True)
class Scenario:
    ready: int
    tenants: int = 1
    finished: int = 0


SCENARIOS = {
    "young_1k": Scenario(ready=1_000),
    "young_1m": Scenario(ready=1_000_000),
    "old_1k": Scenario(ready=1_000, finished=1_000_000),
    "tenants_1000": Scenario(ready=100_000, tenants=1_000),
}
TENANT_PREFIX = "t"


def tenant_names(n: int) -> list[str]:
    return [f"{TENANT_PREFIX}{i}" for i in range(n)]


def seed(url: str, scenario: Scenario) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orchestrator.tenants (id) SELECT %s || g::text"
            " FROM generate_series(0, %s - 1) g",
            (TENANT_PREFIX, scenario.tenants),
        )
        conn.execute("ALTER TABLE orchestrator.jobs DISABLE TRIGGER USER")
        try:
            for state, n in (("succeeded", scenario.finished), ("ready", scenario.ready)):
                if n:
                    conn.execute(
                        SEED_JOBS,
                        {
                            "tenants": tenant_names(scenario.tenants),
                            "job_type": JOB_TYPE,
                            "state": state,
                            "n": n,
                        },
                    )
        finally:
            conn.execute("ALTER TABLE orchestrator.jobs ENABLE TRIGGER USER")
        conn.execute("VACUUM ANALYZE orchestrator.jobs")


async def claimer(
    db: Database, ledger: LeaseLedger, index: int, scenario: Scenario, timings: list[float]
) -> int:
    ctx = TxContext(tenant="", actor_subject="bench")
    worker_ids = [f"bench-claimer-{index}"] * BATCH
    # As the leases dispatcher does: the batch spread over the tenants it has seen.
    per_tenant = math.ceil(BATCH / scenario.tenants)
    done = 0
    for n in range(CLAIMS_PER_CLAIMER):
        start = time.perf_counter()
        claim = await ledger.job_claim_admitted(
            ctx,
            worker_ids=worker_ids,
            job_types=[JOB_TYPE],
            tenants=None,
            per_tenant=per_tenant,
        )
        if n >= WARMUP_CLAIMS:
            timings.append(time.perf_counter() - start)
        await ledger.job_complete_many(
            ctx, [Completion(r["id"], r["lease_id"]) for r in claim.rows], tenants=None
        )
        done += len(claim.rows)
        # The producer: as many new ready jobs as were completed, spread like the seed.
        async with db.transaction(ctx) as conn:
            await conn.execute(
                SEED_JOBS,
                {
                    "tenants": tenant_names(scenario.tenants),
                    "job_type": JOB_TYPE,
                    "state": "ready",
                    "n": len(claim.rows),
                },
            )
    return done


async def measure(name: str, scenario: Scenario) -> float:
    note(
        f"claim cost {name}: {scenario.ready:,} ready over {scenario.tenants:,} tenant(s), "
        f"{scenario.finished:,} finished; {CLAIMERS} claimers x {BATCH}"
    )
    url, db_name = await fresh_database("orch_bench_claim")
    try:
        seed(url, scenario)
        async with Database(url, clock=SystemClock()) as db:
            ledger = LeaseLedger(db)
            timings: list[float] = []
            start = time.perf_counter()
            done = await asyncio.gather(
                *(claimer(db, ledger, i, scenario, timings) for i in range(CLAIMERS))
            )
            elapsed = time.perf_counter() - start
        timings.sort()
        p99 = 1000 * timings[int(0.99 * (len(timings) - 1))]
        figure(f"claim_{name}_p50_ms", 1000 * statistics.median(timings), "ms")
        figure(f"claim_{name}_p95_ms", 1000 * timings[int(0.95 * (len(timings) - 1))], "ms")
        figure(f"claim_{name}_p99_ms", p99, "ms")
        figure(f"claim_{name}_jobs_per_s", sum(done) / elapsed, "jobs/s")
        figure(f"claim_{name}_enqueue_jobs_per_s", await enqueue_rate(url), "jobs/s")
        return p99
    finally:
        drop_database(ADMIN_URL, db_name)


async def enqueue_rate(url: str) -> float:
    """SubmitJobs through a scheduler process into the scenario's queue."""
    stack = Stack(url)
    try:
        stack.wait_serving()
        token = mint_dev_token(SECRET, "bench", [TENANT], ["orch:operate"])
        md = (("authorization", f"Bearer {token}"),)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports['scheduler']}") as channel:
            stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
            return await bench_enqueue(stub, md, "bench.enqueue", ENQUEUE_JOBS)
    finally:
        stack.stop()


def claim_cost_figures(names: list[str]) -> None:
    p99 = {name: asyncio.run(measure(name, SCENARIOS[name])) for name in names}
    if "young_1k" in p99 and "young_1m" in p99:
        figure("claim_p99_1m_vs_1k_x", p99["young_1m"] / p99["young_1k"], "x")


if __name__ == "__main__":
    claim_cost_figures(sys.argv[1:] or list(SCENARIOS))
