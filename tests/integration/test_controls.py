"""Operator controls over real gRPC and PostgreSQL: pausing a source during a run, pausing
the jobs of a job type (and the tenant), priorities, replays; every control audited."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from orchestrator_pg import Completion, Database, LeaseLedger, TxContext
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2
from tests.conftest import Stub

pytestmark = pytest.mark.integration

OPERATOR = common_pb2.OperatorContext(reason="upstream maintenance", ticket="OPS-99")


@pytest.fixture
def tenant(db) -> str:
    name = f"ctl-{uuid.uuid4().hex[:10]}"
    db.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (name,))
    return name


@pytest.fixture
def op(channel, make_token, tenant) -> Stub:
    return Stub(channel, make_token(tenant, ("orch:read", "orch:operate")))


@pytest.fixture
async def leases(database_url):
    async with Database(database_url) as database:
        yield LeaseLedger(database)


async def _claim(leases: LeaseLedger, tenant: str, job_types, n: int = 10):
    result = await leases.job_claim_admitted(
        TxContext(tenant=tenant, actor_subject="ctl-worker"),
        worker_ids=["w"] * n,
        job_types=list(job_types),
        tenants=[tenant],
    )
    return result.rows


def _audit(db, tenant: str) -> list[tuple]:
    return db.execute(
        "SELECT action, target, reason, ticket FROM orchestrator.audit_entries"
        " WHERE tenant = %s ORDER BY occurred_at, id",
        (tenant,),
    ).fetchall()


async def test_pausing_a_source_during_a_run_stops_its_leases_at_the_next_claim(
    op, leases, db, tenant
) -> None:
    paused_src, other_src = [
        (
            await op.CreateSource(
                scheduler_pb2.CreateSourceRequest(
                    source=resources_pb2.Source(
                        name=name, source_type="csaf", host=f"{name}.example.org", enabled=True
                    )
                )
            )
        ).source
        for name in ("vendor-a", "vendor-b")
    ]
    job_type = "csaf.ingest"
    specs = [
        resources_pb2.JobSpec(key=f"{s.name}-{i}", job_type=job_type, source_id=s.id)
        for s in (paused_src, other_src)
        for i in range(30)
    ]
    run = (await op.CreateRun(scheduler_pb2.CreateRunRequest(name="csaf", jobs=specs))).run
    first = await _claim(leases, tenant, [job_type])
    assert first  # the run is under way

    def pause(flag: bool):
        return op.UpdateSource(
            scheduler_pb2.UpdateSourceRequest(
                source=resources_pb2.Source(id=paused_src.id, paused=flag),
                update_mask=field_mask_pb2.FieldMask(paths=["paused"]),
                operator=OPERATOR,
            )
        )

    await pause(True)
    during = await _claim(leases, tenant, [job_type], 100)
    assert during  # the other source keeps flowing
    assert {str(r["source_id"]) for r in during} == {other_src.id}
    await pause(False)
    after = await _claim(leases, tenant, [job_type], 100)
    assert {str(r["source_id"]) for r in after} == {paused_src.id}  # resumed
    assert len(first) + len(during) + len(after) == 60
    assert [(a[0], a[1]) for a in _audit(db, tenant)] == [
        ("source.create", f"sources/{paused_src.id}"),
        ("source.create", f"sources/{other_src.id}"),
        ("source.update", f"sources/{paused_src.id}"),
        ("source.update", f"sources/{paused_src.id}"),
    ]
    assert run.id


async def test_pause_and_resume_a_job_type_and_the_tenant(op, leases, db, tenant) -> None:
    await op.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[resources_pb2.JobSpec(job_type=t) for t in ("vex.ingest", "sbom.ingest")]
        )
    )
    paused = (
        await op.PauseJobs(scheduler_pb2.PauseJobsRequest(job_type="vex.ingest", operator=OPERATOR))
    ).quota
    assert paused.paused
    rows = await _claim(leases, tenant, ["vex.ingest", "sbom.ingest"])
    assert [r["job_type"] for r in rows] == ["sbom.ingest"]
    await op.PauseJobs(scheduler_pb2.PauseJobsRequest(operator=OPERATOR))  # the whole tenant
    await op.ResumeJobs(scheduler_pb2.ResumeJobsRequest(job_type="vex.ingest", operator=OPERATOR))
    assert await _claim(leases, tenant, ["vex.ingest"]) == []  # still paused tenant-wide
    await op.ResumeJobs(scheduler_pb2.ResumeJobsRequest(operator=OPERATOR))
    assert [r["job_type"] for r in await _claim(leases, tenant, ["vex.ingest"])] == ["vex.ingest"]
    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await op.PauseJobs(scheduler_pb2.PauseJobsRequest(job_type="vex.ingest"))
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [a for a in _audit(db, tenant) if a[0].startswith("jobs.")] == [
        ("jobs.pause", "job-types/vex.ingest", OPERATOR.reason, OPERATOR.ticket),
        ("jobs.pause", "tenant", OPERATOR.reason, OPERATOR.ticket),
        ("jobs.resume", "job-types/vex.ingest", OPERATOR.reason, OPERATOR.ticket),
        ("jobs.resume", "tenant", OPERATOR.reason, OPERATOR.ticket),
    ]


async def test_prioritize_a_job_and_a_run(op, leases, tenant) -> None:
    jobs = (
        await op.SubmitJobs(
            scheduler_pb2.SubmitJobsRequest(
                jobs=[resources_pb2.JobSpec(job_type="policy.eval") for _ in range(3)]
            )
        )
    ).jobs
    last = jobs[-1]
    bumped = (
        await op.PrioritizeJob(
            scheduler_pb2.PrioritizeJobRequest(job_id=last.id, priority=500, operator=OPERATOR)
        )
    ).job
    assert bumped.priority == 500
    (first,) = await _claim(leases, tenant, ["policy.eval"], 1)
    assert str(first["id"]) == last.id  # the prioritized job goes first
    with pytest.raises(grpc.aio.AioRpcError) as leased:
        await op.PrioritizeJob(
            scheduler_pb2.PrioritizeJobRequest(job_id=last.id, priority=1, operator=OPERATOR)
        )
    assert leased.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    run = (
        await op.CreateRun(
            scheduler_pb2.CreateRunRequest(
                name="r",
                jobs=[resources_pb2.JobSpec(key=f"k{i}", job_type="policy.eval") for i in range(4)],
            )
        )
    ).run
    changed = await op.PrioritizeRun(
        scheduler_pb2.PrioritizeRunRequest(run_id=run.id, priority=900, operator=OPERATOR)
    )
    assert changed.changed_jobs == 4
    top = await _claim(leases, tenant, ["policy.eval"], 4)
    assert {str(r["run_id"]) for r in top} == {run.id}


async def test_replay_of_a_succeeded_job(op, leases, tenant) -> None:
    (job,) = (
        await op.SubmitJobs(
            scheduler_pb2.SubmitJobsRequest(jobs=[resources_pb2.JobSpec(job_type="sbom.scan")])
        )
    ).jobs
    with pytest.raises(grpc.aio.AioRpcError) as not_done:
        await op.ReplayJob(scheduler_pb2.ReplayJobRequest(job_id=job.id, operator=OPERATOR))
    assert not_done.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    (row,) = await _claim(leases, tenant, ["sbom.scan"], 1)
    ctx = TxContext(tenant=tenant, actor_subject="ctl-worker")
    (outcome,) = await leases.job_complete_many(
        ctx, [Completion(row["id"], row["lease_id"])], tenants=[tenant]
    )
    assert outcome.ok
    replay = (
        await op.ReplayJob(scheduler_pb2.ReplayJobRequest(job_id=job.id, operator=OPERATOR))
    ).job
    assert replay.replay_of == job.id
    assert replay.id != job.id
    assert replay.state == common_pb2.JOB_STATE_READY
    assert replay.job_type == "sbom.scan"
