"""make demo: the stack on embedded defaults plus a demo workload.

Starts everything (scripts/stack.py up), registers four feeds of the demo tenant (NVD, OSV,
GHSA and a vendor CSAF server) and submits one DAG run per feed — advisory ingest → VEX
ingest → SBOM → policy evaluation, several hundred jobs — then prints the runs as a table,
the tokens to explore with, and keeps serving until Ctrl-C (``--exit`` stops at once, for
scripts). Re-running it reuses the sources and, through run idempotency keys, the runs.

Worker fleets join when the leases service lands; until then the runs wait in the ledger
with their first level ready.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from google.protobuf import struct_pb2

from orchestrator_grpckit import DEV_HS256_SECRET, mint_dev_token
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2, scheduler_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
TENANT = "demo"
FEEDS = (
    ("nvd", "nvd", "services.nvd.nist.gov"),
    ("osv", "osv", "api.osv.dev"),
    ("ghsa", "ghsa", "api.github.com"),
    ("csaf-vendor", "csaf", "csaf.vendor.example"),
)
WINDOWS_PER_FEED = 36  # hourly event-time windows per feed


def _payload(**values: object) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def _dag(feed: str) -> list[resources_pb2.JobSpec]:
    jobs: list[resources_pb2.JobSpec] = []
    for w in range(WINDOWS_PER_FEED):
        jobs.append(
            resources_pb2.JobSpec(
                key=f"ingest-{w}",
                job_type="advisory.ingest",
                priority=10,
                payload=_payload(feed=feed, window=w),
            )
        )
        jobs.append(
            resources_pb2.JobSpec(
                key=f"vex-{w}",
                job_type="vex.ingest",
                depends_on=[f"ingest-{w}"],
                payload=_payload(feed=feed, window=w),
            )
        )
        jobs.append(
            resources_pb2.JobSpec(
                key=f"sbom-{w}",
                job_type="sbom.scan",
                depends_on=[f"vex-{w}"],
                payload=_payload(feed=feed, window=w),
            )
        )
    for shard in range(WINDOWS_PER_FEED // 6):
        parents = [f"sbom-{w}" for w in range(shard * 6, shard * 6 + 6)]
        jobs.append(
            resources_pb2.JobSpec(
                key=f"policy-{shard}",
                job_type="policy.evaluate",
                depends_on=parents,
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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the Stella Orchestrator demo.")
    parser.add_argument("--exit", action="store_true", help="stop the stack and exit when done")
    args = parser.parse_args()

    if subprocess.run([sys.executable, str(ROOT / "scripts" / "stack.py"), "up"]).returncode:
        return 1
    operator = mint_dev_token(
        DEV_HS256_SECRET, "demo-operator", [TENANT], ["orch:read", "orch:operate"], ttl_s=12 * 3600
    )
    reader = mint_dev_token(
        DEV_HS256_SECRET, "demo-viewer", [TENANT], ["orch:read"], ttl_s=12 * 3600
    )
    md = (("authorization", f"Bearer {operator}"),)
    rows = []
    with grpc.insecure_channel("127.0.0.1:50051") as channel:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        for name, kind, host in FEEDS:
            source = _ensure_source(stub, md, name, kind, host)
            created = stub.CreateRun(
                scheduler_pb2.CreateRunRequest(
                    name=f"{name}-pipeline",
                    source_id=source.id,
                    project="demo",
                    idempotency_key=f"demo-{name}-pipeline-v1",
                    jobs=_dag(name),
                ),
                metadata=md,
            )
            rows.append((name, host, created.run, created.existing))

    print()
    print(
        f"{'FEED':<12} {'HOST':<24} {'RUN':<36} {'STATE':<9} {'JOBS':>5}"
        f" {'READY':>6} {'PENDING':>8}"
    )
    for name, host, run, existing in rows:
        counts = dict(run.job_counts)
        state = common_pb2.RunState.Name(run.state).removeprefix("RUN_STATE_").lower()
        total = sum(counts.values())
        print(
            f"{name:<12} {host:<24} {run.id:<36} {state:<9} {total:>5} "
            f"{counts.get('ready', 0):>6} {counts.get('pending', 0):>8}"
            + ("  (existing)" if existing else "")
        )
    print()
    print("Tokens for tenant 'demo' (12 h):")
    print(f"  read:     {reader}")
    print(f"  operator: {operator}")
    print()
    print("Explore with grpcurl (reflection is on):")
    print("  grpcurl -plaintext localhost:50051 list")
    print(f"  grpcurl -plaintext -H 'authorization: Bearer {reader[:16]}…' \\")
    print(
        "    -d '{\"page_size\": 5}' localhost:50051"
        " stella.orchestrator.v1.SchedulerService/ListRuns"
    )
    if args.exit:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "stack.py"), "down"])
        return 0
    print("\nServing until Ctrl-C (make down stops a stack started with make up).")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "stack.py"), "down"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
