"""Tenant quotas (CRUD, scopes, audit) and submit-time backpressure on max_queued.

Every test registers its own tenant so the queue counts are its alone.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from orchestrator_grpckit import error_details
from orchestrator_pg import QUEUE_RETRY_AFTER_S, queue_limit
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2
from tests.conftest import Stub

pytestmark = pytest.mark.integration

OPERATOR = common_pb2.OperatorContext(reason="capacity planning", ticket="OPS-42")


@pytest.fixture
def tenant(db) -> str:
    name = f"q{uuid.uuid4().hex[:12]}"
    db.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (name,))
    return name


@pytest.fixture
def admin(channel: grpc.aio.Channel, make_token, tenant: str) -> Stub:
    return Stub(channel, make_token(tenant, ("orch:read", "orch:operate", "orch:quota")))


@pytest.fixture
def reader_of(channel: grpc.aio.Channel, make_token, tenant: str) -> Stub:
    return Stub(channel, make_token(tenant, ("orch:read", "orch:operate")))


async def _quota(stub: Stub, job_type: str = "", **limits: int) -> resources_pb2.Quota:
    resp = await stub.CreateQuota(
        scheduler_pb2.CreateQuotaRequest(
            quota=resources_pb2.Quota(job_type=job_type, **limits), operator=OPERATOR
        )
    )
    return resp.quota


def _spec(job_type: str = "scan.work", **kwargs) -> resources_pb2.JobSpec:
    return resources_pb2.JobSpec(job_type=job_type, **kwargs)


async def _submit(
    stub: Stub, job_type: str = "scan.work", **kwargs
) -> scheduler_pb2.SubmitJobResponse:
    return await stub.SubmitJob(scheduler_pb2.SubmitJobRequest(job=_spec(job_type, **kwargs)))


def _queued(db, tenant: str, job_type: str | None = None) -> int:
    row = db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE tenant = %s AND state IN ('pending', 'ready')"
        " AND (%s::text IS NULL OR job_type = %s)",
        (tenant, job_type, job_type),
    ).fetchone()
    return int(row[0])


def _jobs(db, tenant: str) -> int:
    return int(
        db.execute(
            "SELECT count(*) FROM orchestrator.jobs WHERE tenant = %s", (tenant,)
        ).fetchone()[0]
    )


async def _refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def _assert_exhausted(err: grpc.aio.AioRpcError) -> None:
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.details()
    details = error_details(err)
    assert details["RetryInfo"].retry_delay.ToTimedelta().total_seconds() == QUEUE_RETRY_AFTER_S
    assert details["ErrorInfo"].reason == "QUEUE_FULL"


# ------------------------------------------------------------------ CRUD, scopes, audit


async def test_quota_crud_and_audit(admin: Stub, db, tenant: str) -> None:
    quota = await _quota(admin, max_queued=10, max_active=3)
    assert quota.tenant == tenant
    assert quota.max_queued == 10
    assert quota.max_active == 3
    assert (quota.reason, quota.ticket) == (OPERATOR.reason, OPERATOR.ticket)
    per_type = await _quota(admin, "scan.work", max_queued=4)

    got = (await admin.GetQuota(scheduler_pb2.GetQuotaRequest(quota_id=quota.id))).quota
    assert got == quota
    listed = await admin.ListQuotas(scheduler_pb2.ListQuotasRequest(page_size=1))
    assert [q.id for q in listed.quotas] == [quota.id]
    assert listed.next_page_token
    rest = await admin.ListQuotas(
        scheduler_pb2.ListQuotasRequest(page_size=1, page_token=listed.next_page_token)
    )
    assert [q.id for q in rest.quotas] == [per_type.id]
    assert not rest.next_page_token
    only = await admin.ListQuotas(scheduler_pb2.ListQuotasRequest(job_type="scan.work"))
    assert [q.id for q in only.quotas] == [per_type.id]

    dup = await _refused(
        admin.CreateQuota(
            scheduler_pb2.CreateQuotaRequest(
                quota=resources_pb2.Quota(max_queued=1), operator=OPERATOR
            )
        )
    )
    assert dup.code() == grpc.StatusCode.ALREADY_EXISTS

    updated = (
        await admin.UpdateQuota(
            scheduler_pb2.UpdateQuotaRequest(
                quota=resources_pb2.Quota(id=quota.id, max_queued=20, paused=True, max_active=99),
                update_mask=field_mask_pb2.FieldMask(paths=["max_queued", "paused"]),
                operator=common_pb2.OperatorContext(reason="more room"),
            )
        )
    ).quota
    assert (updated.max_queued, updated.paused, updated.max_active) == (20, True, 3)
    assert (updated.reason, updated.ticket) == ("more room", "")
    paused = await admin.ListQuotas(scheduler_pb2.ListQuotasRequest(paused=True))
    assert [q.id for q in paused.quotas] == [quota.id]

    await admin.DeleteQuota(
        scheduler_pb2.DeleteQuotaRequest(quota_id=per_type.id, operator=OPERATOR)
    )
    gone = await _refused(admin.GetQuota(scheduler_pb2.GetQuotaRequest(quota_id=per_type.id)))
    assert gone.code() == grpc.StatusCode.NOT_FOUND

    audit = db.execute(
        "SELECT action, target, reason, ticket, actor_scopes FROM orchestrator.audit_entries"
        " WHERE tenant = %s ORDER BY occurred_at, id",
        (tenant,),
    ).fetchall()
    assert [(a, t) for a, t, *_ in audit] == [
        ("quota.create", f"quotas/{quota.id}"),
        ("quota.create", f"quotas/{per_type.id}"),
        ("quota.update", f"quotas/{quota.id}"),
        ("quota.delete", f"quotas/{per_type.id}"),
    ]
    assert audit[0][2:4] == (OPERATOR.reason, OPERATOR.ticket)
    assert audit[2][2:4] == ("more room", "")
    assert "orch:quota" in audit[0][4]


async def test_writes_need_quota_scope_and_reason(
    admin: Stub, reader_of: Stub, db, tenant: str
) -> None:
    denied = await _refused(
        reader_of.CreateQuota(
            scheduler_pb2.CreateQuotaRequest(
                quota=resources_pb2.Quota(max_queued=5), operator=OPERATOR
            )
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED

    no_reason = await _refused(
        admin.CreateQuota(scheduler_pb2.CreateQuotaRequest(quota=resources_pb2.Quota(max_queued=5)))
    )
    assert no_reason.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [v.field for v in error_details(no_reason)["BadRequest"].field_violations]
    assert fields == ["operator.reason"]

    bad = await _refused(
        admin.CreateQuota(
            scheduler_pb2.CreateQuotaRequest(
                quota=resources_pb2.Quota(max_queued=-1, job_type="Bad Type"), operator=OPERATOR
            )
        )
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        db.execute(
            "SELECT count(*) FROM orchestrator.quotas WHERE tenant = %s", (tenant,)
        ).fetchone()[0]
        == 0
    )

    quota = await _quota(admin, max_queued=5)
    assert (
        await reader_of.GetQuota(scheduler_pb2.GetQuotaRequest(quota_id=quota.id))
    ).quota == quota
    for call in (
        reader_of.UpdateQuota(
            scheduler_pb2.UpdateQuotaRequest(
                quota=resources_pb2.Quota(id=quota.id, max_queued=50),
                update_mask=field_mask_pb2.FieldMask(paths=["max_queued"]),
                operator=OPERATOR,
            )
        ),
        reader_of.DeleteQuota(
            scheduler_pb2.DeleteQuotaRequest(quota_id=quota.id, operator=OPERATOR)
        ),
    ):
        assert (await _refused(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    for call in (
        admin.UpdateQuota(
            scheduler_pb2.UpdateQuotaRequest(
                quota=resources_pb2.Quota(id=quota.id, max_queued=50),
                update_mask=field_mask_pb2.FieldMask(paths=["max_queued"]),
            )
        ),
        admin.DeleteQuota(scheduler_pb2.DeleteQuotaRequest(quota_id=quota.id)),
    ):
        assert (await _refused(call)).code() == grpc.StatusCode.INVALID_ARGUMENT
    stored = (await admin.GetQuota(scheduler_pb2.GetQuotaRequest(quota_id=quota.id))).quota
    assert stored.max_queued == 5


# ------------------------------------------------------------------ backpressure


def test_shedding_rule() -> None:
    assert [queue_limit(100, p) for p in (1000, 0, -1, -100, -101)] == [100, 100, 80, 80, 60]
    assert queue_limit(10, -1) == 8


async def test_cap_refuses_the_eleventh_and_leaves_nothing(admin: Stub, db, tenant: str) -> None:
    await _quota(admin, max_queued=10)
    for i in range(10):
        await _submit(admin, idempotency_key=f"k{i}")
    err = await _refused(_submit(admin, idempotency_key="k10"))
    _assert_exhausted(err)
    assert _jobs(db, tenant) == 10
    assert (
        db.execute(
            "SELECT count(*) FROM orchestrator.jobs WHERE tenant = %s AND idempotency_key = 'k10'",
            (tenant,),
        ).fetchone()[0]
        == 0
    )

    # an idempotent repeat at the cap returns the existing job
    again = await _submit(admin, idempotency_key="k3")
    assert again.existing
    # a CreateRun that would cross the cap is refused too
    run = await _refused(
        admin.CreateRun(scheduler_pb2.CreateRunRequest(name="r", jobs=[_spec(key="a")]))
    )
    _assert_exhausted(run)
    assert (
        db.execute(
            "SELECT count(*) FROM orchestrator.runs WHERE tenant = %s", (tenant,)
        ).fetchone()[0]
        == 0
    )

    # jobs leaving the queue make room again
    listed = await admin.ListJobs(scheduler_pb2.ListJobsRequest(page_size=2))
    for job in listed.jobs:
        await admin.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id, operator=OPERATOR))
    await _submit(admin, idempotency_key="k10")
    await _submit(admin, idempotency_key="k11")
    _assert_exhausted(await _refused(_submit(admin, idempotency_key="k12")))
    assert _queued(db, tenant) == 10


async def test_batch_crossing_the_cap_is_refused_whole(admin: Stub, db, tenant: str) -> None:
    await _quota(admin, max_queued=5)
    await admin.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=[_spec() for _ in range(3)]))
    err = await _refused(
        admin.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=[_spec() for _ in range(3)]))
    )
    _assert_exhausted(err)
    assert _jobs(db, tenant) == 3
    err = await _refused(
        admin.CreateRun(
            scheduler_pb2.CreateRunRequest(name="big", jobs=[_spec(key=f"j{i}") for i in range(3)])
        )
    )
    _assert_exhausted(err)
    assert _jobs(db, tenant) == 3
    # a batch that fits, with repeats of existing keys that do not count
    first = await admin.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[_spec(idempotency_key="x"), _spec(idempotency_key="x")]
        )
    )
    assert first.existing == [False, True]
    ok = await admin.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(jobs=[_spec(idempotency_key="x"), _spec()])
    )
    assert ok.existing == [True, False]
    assert _queued(db, tenant) == 5


async def test_per_job_type_cap(admin: Stub, db, tenant: str) -> None:
    await _quota(admin, "slow.work", max_queued=2)
    await _submit(admin, "slow.work")
    await _submit(admin, "slow.work")
    _assert_exhausted(await _refused(_submit(admin, "slow.work")))
    mixed = admin.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(jobs=[_spec("fast.work"), _spec("slow.work")])
    )
    _assert_exhausted(await _refused(mixed))
    for _ in range(5):  # other job types are not capped
        await _submit(admin, "fast.work")
    assert _queued(db, tenant, "slow.work") == 2
    assert _queued(db, tenant) == 7


async def test_low_priority_is_shed_first(admin: Stub, db, tenant: str) -> None:
    await _quota(admin, max_queued=20)
    await admin.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=[_spec() for _ in range(17)]))
    assert _queued(db, tenant) == 17  # 85 % of the cap
    _assert_exhausted(await _refused(_submit(admin, priority=-10)))
    _assert_exhausted(await _refused(_submit(admin, priority=-500)))
    accepted = await _submit(admin, priority=10)
    assert accepted.job.priority == 10
    assert not accepted.existing
    assert _queued(db, tenant) == 18


async def test_tenant_without_quota_is_not_capped(admin: Stub, db, tenant: str) -> None:
    await admin.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(jobs=[_spec(priority=-1000) for _ in range(30)])
    )
    assert _queued(db, tenant) == 30


async def test_quota_of_another_tenant_does_not_apply(
    admin: Stub, scheduler: Stub, db, tenant: str
) -> None:
    await _quota(admin, max_queued=1)
    await _submit(admin)
    _assert_exhausted(await _refused(_submit(admin)))
    await _submit(scheduler)  # tenant acme has no quota


async def test_concurrent_submits_never_overfill(admin: Stub, db, tenant: str) -> None:
    await _quota(admin, max_queued=5)
    results = await asyncio.gather(*(_submit(admin) for _ in range(12)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(refused) == 7
    for err in refused:
        _assert_exhausted(err)
    assert _queued(db, tenant) == 5
