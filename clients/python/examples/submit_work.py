#!/usr/bin/env python3
"""Producer example: submit a job and a three-job run, follow them, and print the outcome.

Serve the jobs with the worker example (``examples/ingest_worker.py``, job type
``advisory.ingest``), then::

    TOKEN=$(stella orchestrator token mint --tenant acme --scopes orch:read,orch:operate)
    python clients/python/examples/submit_work.py --target localhost:50051 --token $TOKEN

It submits one job twice with the same idempotency key (the second call returns the first
job), builds a run ``fetch → parse → index`` with the DAG builder, waits for both, prints
the run's events (``watch`` from seq 0, filtered to the run) and exits 0 when everything
succeeded, 1 otherwise. Needs only the SDK distribution (``pip install
stella-orchestrator-sdk``).
"""

from __future__ import annotations

import argparse
import os
import uuid

from stella.orchestrator.v1 import common_pb2
from stella_orchestrator.producer import Client, RunBuilder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--target",
        default=os.environ.get("ORCH_SCHEDULER_TARGET", "localhost:50051"),
        help="scheduler host:port (or a comma list of replicas)",
    )
    parser.add_argument(
        "--token", default=os.environ.get("ORCH_TOKEN"), help="orch:read + orch:operate token"
    )
    parser.add_argument("--job-type", default="advisory.ingest")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait")
    parser.add_argument(
        "--tls-ca", default=os.environ.get("STELLA_TLS_CA_FILE") or None, help="PEM CA (TLS)"
    )
    args = parser.parse_args()
    if not args.token:
        parser.error("--token (or ORCH_TOKEN) is required")
    tag = uuid.uuid4().hex[:8]  # a new key per invocation; reuse one to make a call idempotent

    with Client(args.target, token=args.token, tls_ca_file=args.tls_ca) as client:
        # One job; the same idempotency key again returns the same job, queued once.
        key = f"example-{tag}"
        first = client.submit_job(args.job_type, {"pages": 2}, idempotency_key=key)
        again = client.submit_job(args.job_type, {"pages": 2}, idempotency_key=key)
        print(f"job {first.job.id} submitted; repeat returned existing={again.existing}")

        # A run: fetch, then parse, then index (each waits for the one before to succeed).
        run = RunBuilder(f"example-{tag}", idempotency_key=f"example-run-{tag}")
        run.job("fetch", args.job_type, {"pages": 1}).then(
            "parse", args.job_type, {"pages": 2}
        ).then("index", args.job_type, {"pages": 1})
        created = client.create_run(run)
        print(f"run {created.run.id} created with jobs {[j.key for j in created.jobs]}")

        job = client.wait_job(first.job.id, timeout_s=args.timeout)
        finished = client.wait_run(created.run.id, timeout_s=args.timeout)
        print(f"job {job.id}: {common_pb2.JobState.Name(job.state)}, result {dict(job.result)}")
        print(f"run {finished.id}: {common_pb2.RunState.Name(finished.state)}")

        # The run's history from the event log (watch resumes from any seq after a break).
        seen = 0
        for event in client.watch(after_seq=0, run_id=created.run.id):
            print(f"  #{event.seq} {event.type} {event.job.id}")
            seen += event.type == "job.succeeded"
            if seen == len(created.jobs):
                break

    ok = job.state == common_pb2.JOB_STATE_SUCCEEDED
    ok = ok and finished.state == common_pb2.RUN_STATE_SUCCEEDED
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
