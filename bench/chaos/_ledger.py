"""The invariants of a chaos run, read from the ledger after the burn-down, and the run's
audit bundle verified offline (signature, file hashes, chain, replay) as
``stella orchestrator audit verify`` does.

Each check adds figures (``name -> (value, unit)``) and, when it breaks, a problem: a
sentence the runner prints and exits non-zero on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import grpc
import psycopg

from orchestrator_audit import load_public_key, replay_archive, verify_archive
from stella.orchestrator.v1 import audit_pb2, audit_pb2_grpc
from stella_orchestrator.targets import channel_options, channel_target

EXPORT_TIMEOUT_S = 600


@dataclass
class Verdict:
    figures: dict[str, tuple[float, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def figure(self, name: str, value: float, unit: str) -> None:
        self.figures[name] = (value, unit)

    def expect(self, holds: bool, problem: str) -> None:
        if not holds:
            self.problems.append(problem)


def _one(conn: psycopg.Connection, sql: str, *params: object) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0] or 0) if row else 0


def check_jobs(conn: psycopg.Connection, tenant: str, expected: int, verdict: Verdict) -> None:
    """Every job of the tenant succeeded exactly once, none is leased, none is missing."""
    states = dict(
        conn.execute(
            "SELECT state, count(*) FROM orchestrator.jobs WHERE tenant = %s GROUP BY state",
            (tenant,),
        ).fetchall()
    )
    total = sum(states.values())
    succeeded = states.get("succeeded", 0)
    per_job = conn.execute(
        "SELECT count(*) FILTER (WHERE n > 1), coalesce(sum(n - 1) FILTER (WHERE n > 1), 0)"
        "  FROM (SELECT job_id, count(*) AS n FROM orchestrator.events"
        "         WHERE tenant = %s AND type = 'job.succeeded' GROUP BY job_id) e",
        (tenant,),
    ).fetchone()
    doubled = int(per_job[0]) if per_job else 0
    extra_events = int(per_job[1]) if per_job else 0
    without_event = _one(
        conn,
        "SELECT count(*) FROM orchestrator.jobs j WHERE j.tenant = %s AND NOT EXISTS"
        " (SELECT 1 FROM orchestrator.events e WHERE e.tenant = j.tenant AND e.job_id = j.id"
        "    AND e.type = 'job.succeeded')",
        tenant,
    )
    leased = states.get("leased", 0)
    redelivered = _one(
        conn, "SELECT count(*) FROM orchestrator.jobs WHERE tenant = %s AND attempt > 1", tenant
    )
    canceled = _one(
        conn,
        "SELECT count(*) FROM orchestrator.events WHERE tenant = %s AND type = 'job.retrying'"
        " AND (reason ILIKE '%%cancel%%' OR data::text ILIKE '%%cancel%%')",
        tenant,
    )
    expired = _one(
        conn,
        "SELECT count(*) FROM orchestrator.events WHERE tenant = %s"
        " AND (reason = 'lease_expired' OR data::text LIKE '%%lease_expired%%')",
        tenant,
    )
    retries = conn.execute(
        "SELECT coalesce(reason, ''), count(*) FROM orchestrator.events"
        " WHERE tenant = %s AND type = 'job.retrying' GROUP BY 1 ORDER BY 1",
        (tenant,),
    ).fetchall()
    lost = max(expected - succeeded, 0)
    verdict.figure("chaos_jobs", total, "jobs")
    verdict.figure("chaos_succeeded", succeeded, "jobs")
    verdict.figure("chaos_lost", lost, "jobs")
    verdict.figure("chaos_doubled", doubled, "jobs")
    verdict.figure("chaos_redelivered", redelivered, "jobs")
    verdict.figure("chaos_leases_expired", expired, "events")
    verdict.figure("chaos_handlers_canceled", canceled, "jobs")
    for reason, count in retries:
        verdict.figure(f"chaos_retries_{reason or 'unknown'}", count, "jobs")
    verdict.expect(total == expected, f"{total} jobs in the ledger, {expected} submitted")
    verdict.expect(states == {"succeeded": expected}, f"jobs by state: {states}")
    verdict.expect(doubled == 0, f"{doubled} jobs have {extra_events} extra job.succeeded events")
    verdict.expect(without_event == 0, f"{without_event} jobs have no job.succeeded event")
    verdict.expect(leased == 0, f"{leased} leases left")
    verdict.expect(canceled == 0, f"{canceled} handlers were cancelled and retried")


def _minutes_after(start: datetime, end: datetime) -> list[datetime]:
    """Every whole minute ``m`` with ``start < m <= end``."""
    first = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    out = []
    while first <= end:
        out.append(first)
        first += timedelta(minutes=1)
    return out


def schedule_fires(conn: psycopg.Connection, schedule_id: str) -> tuple[list[datetime], datetime]:
    """The fire times of the schedule's runs (from their idempotency keys
    ``schedule:<id>:<time>``) and its creation time."""
    keys = [
        row[0]
        for row in conn.execute(
            "SELECT idempotency_key FROM orchestrator.runs WHERE schedule_id = %s",
            (schedule_id,),
        ).fetchall()
    ]
    fires = [datetime.fromisoformat(key.split(":", 2)[2].replace("Z", "+00:00")) for key in keys]
    row = conn.execute(
        "SELECT created_at FROM orchestrator.schedules WHERE id = %s", (schedule_id,)
    ).fetchone()
    assert row is not None, f"schedule {schedule_id} is gone"
    return sorted(fires), row[0]


def check_schedule(
    conn: psycopg.Connection, schedule_id: str, until: datetime, verdict: Verdict
) -> None:
    """The once-a-minute schedule fired exactly once for every minute from its creation up
    to ``until``, and for no other time up to it (later fire times are not judged: the
    schedule was stopped around then)."""
    fires, created = schedule_fires(conn, schedule_id)
    expected = _minutes_after(created, until)
    counted = [f for f in fires if f <= until]
    verdict.figure("chaos_schedule_fires", len(counted), "fires")
    missing = sorted(set(expected) - set(counted))
    doubled = len(counted) - len(set(counted))
    unexpected = sorted(set(counted) - set(expected))
    verdict.figure("chaos_schedule_fires_missed", len(missing), "fires")
    verdict.figure("chaos_schedule_fires_doubled", doubled, "fires")
    verdict.expect(not missing, f"schedule fire times without a run: {missing}")
    verdict.expect(doubled == 0, f"{doubled} schedule fire times fired twice")
    verdict.expect(not unexpected, f"schedule runs for fire times never due: {unexpected}")


def check_bundle(audit_target: str, token: str, run_id: str, verdict: Verdict) -> None:
    """Exports the run's audit bundle from any audit replica and verifies it offline."""
    metadata = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(channel_target(audit_target), channel_options()) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        chunks = [
            reply.chunk
            for reply in stub.ExportBundle(
                audit_pb2.ExportBundleRequest(run_id=run_id),
                metadata=metadata,
                timeout=EXPORT_TIMEOUT_S,
            )
        ]
        key = stub.GetPublicKey(audit_pb2.GetPublicKeyRequest(), metadata=metadata, timeout=60)
    archive = b"".join(chunks)
    verified = verify_archive(archive, [load_public_key(key.public_key_pem.encode())])
    replayed = replay_archive(archive)
    verdict.figure("chaos_bundle_bytes", len(archive), "bytes")
    verdict.expect(verified.ok, f"the run's audit bundle does not verify: {verified.problems[:5]}")
    verdict.expect(replayed.ok, f"the run's audit bundle does not replay: {replayed.problems[:5]}")
