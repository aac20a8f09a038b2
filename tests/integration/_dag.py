"""Helpers shared by the integration tests: building DAG requests and reading the ledger."""

from __future__ import annotations

from collections import defaultdict

import psycopg
from google.protobuf import struct_pb2

from stella.orchestrator.v1 import resources_pb2


def spec(key: str, job_type: str, deps: list[str] = (), **payload) -> resources_pb2.JobSpec:
    body = struct_pb2.Struct()
    body.update({"key": key, **payload})
    return resources_pb2.JobSpec(key=key, job_type=job_type, depends_on=list(deps), payload=body)


def three_level_dag() -> list[resources_pb2.JobSpec]:
    """100 jobs: 10 ingest → 30 VEX (one parent each) → 60 policy (two parents each)."""
    jobs = [spec(f"a{i}", "advisory.ingest") for i in range(10)]
    jobs += [spec(f"b{i}", "vex.ingest", [f"a{i % 10}"]) for i in range(30)]
    jobs += [
        spec(f"c{i}", "policy.evaluate", [f"b{i % 30}", f"b{(i + 1) % 30}"]) for i in range(60)
    ]
    return jobs


def job_events(db: psycopg.Connection, run_id: str) -> dict[str, list[tuple]]:
    """``{job_id: [(seq, type, from, to, reason, attempt, at, lease_id, max_attempts)]}``,
    each list in seq order."""
    rows = db.execute(
        "SELECT job_id::text, seq, type, from_state, to_state, reason, attempt, occurred_at,"
        " lease_id::text, (data->>'max_attempts')::int"
        " FROM orchestrator.events WHERE run_id = %s AND job_id IS NOT NULL ORDER BY seq",
        (run_id,),
    ).fetchall()
    out: dict[str, list[tuple]] = defaultdict(list)
    for job_id, *rest in rows:
        out[job_id].append(tuple(rest))
    return out
