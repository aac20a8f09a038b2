"""Ledger and scheduler benchmarks on a fresh database.

Figures (one per line, `name value unit`):
* enqueue_jobs_per_s        SubmitJobs over gRPC, batches of 500 standalone jobs
* dag_create_jobs_per_s     CreateRun over gRPC, 1,000-job three-level DAGs
* ledger_claim_complete_jobs_per_s   LeaseLedger claim(100) + complete(100) batches, 4 concurrent
                                     loops, events written by the outbox triggers

The worker-protocol end-to-end figures (e2e_jobs_per_s, start latency) and the peer runs
arrive with the leases service.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import grpc
import psycopg
from google.protobuf import struct_pb2

from orchestrator_grpckit import ServiceConfig, mint_dev_token
from orchestrator_pg import (
    Completion,
    Database,
    LeaseLedger,
    TxContext,
    create_database,
    drop_database,
    migrate,
)
from orchestrator_scheduler import build_service
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2, scheduler_pb2_grpc

ADMIN_URL = os.environ.get(
    "ORCH_TEST_DATABASE_URL",
    "postgresql://orchestrator:orchestrator@127.0.0.1:5432/orchestrator_test",
)
SECRET = "bench-secret-0123456789abcdef0123"


def figure(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.1f} {unit}", flush=True)


def _payload(i: int) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update({"window": i, "feed": "bench"})
    return s


async def bench_enqueue(stub, md, total: int, batch: int) -> None:
    start = time.perf_counter()
    for offset in range(0, total, batch):
        specs = [
            resources_pb2.JobSpec(job_type="bench.noop", payload=_payload(offset + i))
            for i in range(batch)
        ]
        await stub.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=specs), metadata=md)
    figure("enqueue_jobs_per_s", total / (time.perf_counter() - start), "jobs/s")


async def bench_dag(stub, md, runs: int) -> None:
    start = time.perf_counter()
    jobs = 0
    for _ in range(runs):
        specs = [resources_pb2.JobSpec(key=f"a{i}", job_type="bench.a") for i in range(100)]
        specs += [
            resources_pb2.JobSpec(key=f"b{i}", job_type="bench.b", depends_on=[f"a{i % 100}"])
            for i in range(300)
        ]
        specs += [
            resources_pb2.JobSpec(
                key=f"c{i}", job_type="bench.c", depends_on=[f"b{i % 300}", f"b{(i + 1) % 300}"]
            )
            for i in range(600)
        ]
        await stub.CreateRun(scheduler_pb2.CreateRunRequest(jobs=specs), metadata=md)
        jobs += len(specs)
    figure("dag_create_jobs_per_s", jobs / (time.perf_counter() - start), "jobs/s")


async def bench_claim_complete(url: str, loops: int, batch: int) -> None:
    async with Database(url, max_size=loops + 2) as db:
        ledger = LeaseLedger(db)
        done = 0

        async def loop(n: int) -> None:
            nonlocal done
            ctx = TxContext(tenant="bench", actor_subject=f"bench-worker-{n}")
            while True:
                rows = await ledger.claim(
                    ctx,
                    worker_id=f"w{n}",
                    job_types=["bench.noop"],
                    limit=batch,
                    tenants=["bench"],
                )
                if not rows:
                    return
                await ledger.complete(
                    ctx, [Completion(r["id"], r["lease_id"]) for r in rows], tenants=["bench"]
                )
                done += len(rows)

        start = time.perf_counter()
        await asyncio.gather(*(loop(n) for n in range(loops)))
        figure("ledger_claim_complete_jobs_per_s", done / (time.perf_counter() - start), "jobs/s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    name = f"orch_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(ADMIN_URL, name)
    try:
        await migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO orchestrator.tenants (id) VALUES ('bench')")
        config = ServiceConfig(
            service_name="scheduler",
            grpc_port=0,
            metrics_port=None,
            database_url=url,
            auth_hs256_secret=SECRET,
            shutdown_grace_s=1.0,
        )
        token = mint_dev_token(SECRET, "bench", ["bench"], ["orch:read", "orch:operate"])
        md = (("authorization", f"Bearer {token}"),)
        async with build_service(config) as service:
            await service.start()
            async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
                stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
                await bench_enqueue(stub, md, args.jobs, 500)
                await bench_dag(stub, md, 5)
            await service.stop()
        await bench_claim_complete(url, loops=4, batch=100)
    finally:
        drop_database(ADMIN_URL, name)


if __name__ == "__main__":
    asyncio.run(main())
