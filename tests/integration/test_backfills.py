"""Backfills over real gRPC and PostgreSQL: 30 days in hourly windows next to 5 days that
already succeeded; dry run, suppression of an identical request, refusal of an overlapping
one (named), scopes and reasons, progress and cancellation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2

from orchestrator_grpckit import error_details
from orchestrator_pg import Completion, Database, LeaseLedger, TxContext
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2
from tests.conftest import Stub

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
OPERATOR = common_pb2.OperatorContext(reason="NVD outage 1-30 Jan", ticket="OPS-4711")


def _window(start: datetime, end: datetime) -> common_pb2.TimeWindow:
    window = common_pb2.TimeWindow()
    window.start.FromDatetime(start)
    window.end.FromDatetime(end)
    return window


def _request(source_id: str, job_type: str, start: datetime, end: datetime, **kwargs):
    return scheduler_pb2.CreateBackfillRequest(
        source_id=source_id,
        job_type=job_type,
        range=_window(start, end),
        window_size=duration_pb2.Duration(seconds=3600),
        operator=kwargs.pop("operator", OPERATOR),
        **kwargs,
    )


@pytest.fixture
def tenant(db) -> str:
    name = f"bf-{uuid.uuid4().hex[:10]}"
    db.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (name,))
    return name


async def test_thirty_days_of_hourly_windows_next_to_five_succeeded_days(
    channel, make_token, database_url, db, tenant
) -> None:
    operator = Stub(channel, make_token(tenant, ("orch:read", "orch:operate", "orch:backfill")))
    plain = Stub(channel, make_token(tenant, ("orch:read", "orch:operate")))
    source = (
        await operator.CreateSource(
            scheduler_pb2.CreateSourceRequest(
                source=resources_pb2.Source(
                    name="nvd", source_type="nvd", host="services.nvd.nist.gov", enabled=True
                )
            )
        )
    ).source
    job_type = "advisory.ingest"
    # Days 10-14 (UTC) were ingested live and succeeded, hour by hour.
    live = [
        resources_pb2.JobSpec(
            job_type=job_type,
            source_id=source.id,
            event_time_window=_window(T0 + (9 * 24 + h) * HOUR, T0 + (9 * 24 + h + 1) * HOUR),
        )
        for h in range(5 * 24)
    ]
    await operator.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=live))
    async with Database(database_url) as database:
        leases = LeaseLedger(database)
        ctx = TxContext(tenant=tenant, actor_subject="live")
        rows = await leases.job_claim_batch(
            ctx, worker_id="live", job_types=[job_type], limit=500, tenants=[tenant]
        )
        assert len(rows) == 120
        outcomes = await leases.job_complete_many(
            ctx, [Completion(r["id"], r["lease_id"]) for r in rows], tenants=[tenant]
        )
        assert all(o.ok for o in outcomes)
    db.execute(
        "INSERT INTO orchestrator.quotas (id, tenant, job_type, max_per_hour, created_at,"
        " updated_at) VALUES (gen_random_uuid(), %s, %s, 120, now(), now())",
        (tenant, job_type),
    )
    end = T0 + 30 * 24 * HOUR

    preview = (
        await operator.CreateBackfill(_request(source.id, job_type, T0, end, dry_run=True))
    ).preview
    assert (preview.window_count, preview.job_count, preview.suppressed_window_count) == (
        720,
        600,
        120,
    )
    assert preview.estimated_duration.ToTimedelta() == timedelta(hours=5)  # 600 at 120/h
    assert "120/h" in preview.limited_by
    (impact,) = preview.quota_impact
    assert (impact.job_type, impact.max_per_hour) == (job_type, 120)
    (backfill_jobs,) = db.execute(
        "SELECT count(*) FROM orchestrator.backfills WHERE tenant = %s", (tenant,)
    ).fetchone()
    assert backfill_jobs == 0  # the dry run wrote nothing

    created = await operator.CreateBackfill(_request(source.id, job_type, T0, end))
    backfill = created.backfill
    assert not created.existing
    assert backfill.job_count == preview.job_count == 600
    assert backfill.suppressed_window_count == 120
    assert backfill.state == resources_pb2.BACKFILL_STATE_PLANNED
    assert backfill.priority == -10  # below live ingestion by default
    assert (backfill.reason, backfill.ticket) == (OPERATOR.reason, OPERATOR.ticket)
    windows = db.execute(
        "SELECT event_window_start, event_window_end, priority FROM orchestrator.jobs"
        " WHERE run_id = %s ORDER BY event_window_start",
        (backfill.run_id,),
    ).fetchall()
    expected = [T0 + h * HOUR for h in range(720) if not 9 * 24 <= h < 14 * 24]
    assert [w[0] for w in windows] == expected  # exactly the missing windows
    assert all(w[1] - w[0] == HOUR and w[2] == -10 for w in windows)

    again = await operator.CreateBackfill(_request(source.id, job_type, T0, end))
    assert again.existing
    assert again.backfill.id == backfill.id
    (total,) = db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE tenant = %s", (tenant,)
    ).fetchone()
    assert total == 720  # 120 live + 600 backfill: nothing new

    with pytest.raises(grpc.aio.AioRpcError) as overlap:
        await operator.CreateBackfill(
            _request(source.id, job_type, T0 + 20 * 24 * HOUR, T0 + 40 * 24 * HOUR)
        )
    assert overlap.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert backfill.id in overlap.value.details()
    details = error_details(overlap.value)
    assert [v.subject for v in details["PreconditionFailure"].violations] == [
        f"backfills/{backfill.id}"
    ]

    with pytest.raises(grpc.aio.AioRpcError) as no_ticket:
        await operator.CreateBackfill(
            _request(
                source.id,
                job_type,
                T0 + 40 * 24 * HOUR,
                T0 + 41 * 24 * HOUR,
                operator=common_pb2.OperatorContext(reason="x"),
            )
        )
    assert no_ticket.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await plain.CreateBackfill(
            _request(source.id, job_type, T0 + 40 * 24 * HOUR, T0 + 41 * 24 * HOUR)
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    listed = await plain.ListBackfills(scheduler_pb2.ListBackfillsRequest(source_id=source.id))
    assert [b.id for b in listed.backfills] == [backfill.id]
    canceled = (
        await operator.CancelBackfill(
            scheduler_pb2.CancelBackfillRequest(backfill_id=backfill.id, operator=OPERATOR)
        )
    ).backfill
    assert canceled.state == resources_pb2.BACKFILL_STATE_CANCELED
    states = db.execute(
        "SELECT DISTINCT state FROM orchestrator.jobs WHERE run_id = %s", (backfill.run_id,)
    ).fetchall()
    assert states == [("canceled",)]
    audit = db.execute(
        "SELECT action, reason, ticket FROM orchestrator.audit_entries WHERE tenant = %s"
        " AND action LIKE 'backfill.%%' ORDER BY occurred_at",
        (tenant,),
    ).fetchall()
    assert audit == [
        ("backfill.create", OPERATOR.reason, OPERATOR.ticket),
        ("backfill.cancel", OPERATOR.reason, OPERATOR.ticket),
    ]
    # A canceled backfill no longer blocks the range: the windows it left undone come back.
    redo = await operator.CreateBackfill(
        _request(source.id, job_type, T0 + 20 * 24 * HOUR, T0 + 40 * 24 * HOUR)
    )
    assert redo.backfill.job_count == 20 * 24
