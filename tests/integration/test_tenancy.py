"""Tenant isolation: nothing acme creates is visible to, or changeable by, globex — not by id,
not through a list, not as a dependency."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from orchestrator_grpckit import error_details
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2

pytestmark = pytest.mark.integration


def _marker() -> str:
    return f"t{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def acme_world(scheduler):
    """A source, a run with a two-job DAG, and a standalone job, all in acme."""
    m = _marker()
    source = (
        await scheduler.CreateSource(
            scheduler_pb2.CreateSourceRequest(
                source=resources_pb2.Source(
                    name=m, source_type=f"k{m}", host="api.osv.dev", enabled=True
                )
            )
        )
    ).source
    run = await scheduler.CreateRun(
        scheduler_pb2.CreateRunRequest(
            name=m,
            project=m,
            source_id=source.id,
            idempotency_key=f"{m}-run",
            jobs=[
                resources_pb2.JobSpec(key="a", job_type=f"{m}.work", source_id=source.id),
                resources_pb2.JobSpec(key="b", job_type=f"{m}.work", depends_on=["a"]),
            ],
        )
    )
    solo = (
        await scheduler.SubmitJob(
            scheduler_pb2.SubmitJobRequest(
                job=resources_pb2.JobSpec(
                    job_type=f"{m}.work", source_id=source.id, idempotency_key=f"{m}-solo"
                )
            )
        )
    ).job
    return {"m": m, "source": source, "run": run.run, "jobs": list(run.jobs), "solo": solo}


async def _refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def _by_id_calls(w) -> list[tuple[str, object, str, str]]:
    job = w["jobs"][0].id
    solo = w["solo"].id
    run = w["run"].id
    source = w["source"].id
    return [
        ("GetJob", scheduler_pb2.GetJobRequest(job_id=job), "job", job),
        ("GetJob", scheduler_pb2.GetJobRequest(job_id=solo), "job", solo),
        ("CancelJob", scheduler_pb2.CancelJobRequest(job_id=job), "job", job),
        ("RetryJob", scheduler_pb2.RetryJobRequest(job_id=solo), "job", solo),
        ("ListJobEvents", scheduler_pb2.ListJobEventsRequest(job_id=job), "job", job),
        ("GetRun", scheduler_pb2.GetRunRequest(run_id=run), "run", run),
        ("GetRunDag", scheduler_pb2.GetRunDagRequest(run_id=run), "run", run),
        ("CancelRun", scheduler_pb2.CancelRunRequest(run_id=run), "run", run),
        ("GetSource", scheduler_pb2.GetSourceRequest(source_id=source), "source", source),
        ("DeleteSource", scheduler_pb2.DeleteSourceRequest(source_id=source), "source", source),
        (
            "UpdateSource",
            scheduler_pb2.UpdateSourceRequest(
                source=resources_pb2.Source(id=source, enabled=False),
                update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
            ),
            "source",
            source,
        ),
        (
            "SubmitJob",
            scheduler_pb2.SubmitJobRequest(
                run_id=run, job=resources_pb2.JobSpec(key="c", job_type="x.work", depends_on=["a"])
            ),
            "run",
            run,
        ),
        (
            "SubmitJob",
            scheduler_pb2.SubmitJobRequest(
                job=resources_pb2.JobSpec(job_type="x.work", depends_on_job_ids=[job])
            ),
            "job",
            job,
        ),
        (
            "SubmitJobs",
            scheduler_pb2.SubmitJobsRequest(
                jobs=[
                    resources_pb2.JobSpec(job_type="x.work"),
                    resources_pb2.JobSpec(job_type="x.work", depends_on_job_ids=[solo]),
                ]
            ),
            "job",
            solo,
        ),
        (
            "SubmitJob",
            scheduler_pb2.SubmitJobRequest(
                job=resources_pb2.JobSpec(job_type="x.work", source_id=source)
            ),
            "source",
            source,
        ),
        (
            "CreateRun",
            scheduler_pb2.CreateRunRequest(
                source_id=source, jobs=[resources_pb2.JobSpec(job_type="x.work")]
            ),
            "source",
            source,
        ),
        (
            "CreateRun",
            scheduler_pb2.CreateRunRequest(
                jobs=[resources_pb2.JobSpec(job_type="x.work", depends_on_job_ids=[job])]
            ),
            "job",
            job,
        ),
    ]


async def _snapshot(scheduler, w) -> tuple:
    dag = await scheduler.GetRunDag(scheduler_pb2.GetRunDagRequest(run_id=w["run"].id))
    solo = await scheduler.GetJob(scheduler_pb2.GetJobRequest(job_id=w["solo"].id))
    source = await scheduler.GetSource(scheduler_pb2.GetSourceRequest(source_id=w["source"].id))
    return dag, solo, source


async def test_acme_ids_are_not_found_for_globex(scheduler, stranger, acme_world, db):
    before = await _snapshot(scheduler, acme_world)
    (globex_jobs,) = db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE tenant = 'globex'"
    ).fetchone()
    (globex_runs,) = db.execute(
        "SELECT count(*) FROM orchestrator.runs WHERE tenant = 'globex'"
    ).fetchone()
    for method, request, resource_type, name in _by_id_calls(acme_world):
        err = await _refused(getattr(stranger, method)(request))
        assert err.code() == grpc.StatusCode.NOT_FOUND, (method, err.details())
        details = error_details(err)
        info = details["ResourceInfo"]
        assert (info.resource_type, info.resource_name) == (resource_type, name), method
        assert details["ErrorInfo"].reason == f"{resource_type.upper()}_NOT_FOUND"
    # nothing of acme changed, and globex got nothing out of the refused calls
    assert await _snapshot(scheduler, acme_world) == before
    assert db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE tenant = 'globex'"
    ).fetchone() == (globex_jobs,)
    assert db.execute(
        "SELECT count(*) FROM orchestrator.runs WHERE tenant = 'globex'"
    ).fetchone() == (globex_runs,)
    (foreign_edges,) = db.execute(
        "SELECT count(*) FROM orchestrator.dag_edges e"
        " JOIN orchestrator.jobs p ON p.id = e.parent_job_id"
        " JOIN orchestrator.jobs c ON c.id = e.child_job_id WHERE p.tenant <> c.tenant"
    ).fetchone()
    assert foreign_edges == 0


async def _all_pages(call, request, field: str) -> list:
    out = []
    while True:
        reply = await call(request)
        out += list(getattr(reply, field))
        if not reply.next_page_token:
            return out
        request.page_token = reply.next_page_token


async def test_lists_as_globex_never_return_acme_rows(scheduler, stranger, acme_world):
    w = acme_world
    m = w["m"]
    # globex has rows of its own that match the same filters
    theirs = (
        await stranger.CreateSource(
            scheduler_pb2.CreateSourceRequest(
                source=resources_pb2.Source(
                    name=m, source_type=f"k{m}", host="api.osv.dev", enabled=True
                )
            )
        )
    ).source
    their_run = await stranger.CreateRun(
        scheduler_pb2.CreateRunRequest(
            name=m, project=m, jobs=[resources_pb2.JobSpec(key="a", job_type=f"{m}.work")]
        )
    )
    acme_ids = {w["source"].id, w["run"].id, w["solo"].id, *(j.id for j in w["jobs"])}

    sources = await _all_pages(
        stranger.ListSources,
        scheduler_pb2.ListSourcesRequest(source_type=f"k{m}", page_size=500),
        "sources",
    )
    assert [s.id for s in sources] == [theirs.id]
    every_source = await _all_pages(
        stranger.ListSources, scheduler_pb2.ListSourcesRequest(page_size=500), "sources"
    )
    assert all(s.tenant == "globex" for s in every_source)
    assert not acme_ids & {s.id for s in every_source}

    runs = await _all_pages(
        stranger.ListRuns, scheduler_pb2.ListRunsRequest(project=m, page_size=500), "runs"
    )
    assert [r.id for r in runs] == [their_run.run.id]
    assert (
        await _all_pages(
            stranger.ListRuns, scheduler_pb2.ListRunsRequest(source_id=w["source"].id), "runs"
        )
        == []
    )
    every_run = await _all_pages(
        stranger.ListRuns, scheduler_pb2.ListRunsRequest(page_size=500), "runs"
    )
    assert all(r.tenant == "globex" for r in every_run)
    assert not acme_ids & {r.id for r in every_run}

    jobs = await _all_pages(
        stranger.ListJobs,
        scheduler_pb2.ListJobsRequest(job_type=f"{m}.work", page_size=500),
        "jobs",
    )
    assert [j.id for j in jobs] == [their_run.jobs[0].id]
    for request in (
        scheduler_pb2.ListJobsRequest(run_id=w["run"].id),
        scheduler_pb2.ListJobsRequest(source_id=w["source"].id),
        scheduler_pb2.ListJobsRequest(
            job_type=f"{m}.work", states=[common_pb2.JOB_STATE_READY, common_pb2.JOB_STATE_PENDING]
        ),
    ):
        found = await _all_pages(stranger.ListJobs, request, "jobs")
        assert not acme_ids & {j.id for j in found}
        assert all(j.tenant == "globex" for j in found)
    every_job = await _all_pages(
        stranger.ListJobs, scheduler_pb2.ListJobsRequest(page_size=500), "jobs"
    )
    assert all(j.tenant == "globex" for j in every_job)
    assert not acme_ids & {j.id for j in every_job}

    # and acme still sees its own rows through the same filters, not globex's
    ours = await _all_pages(
        scheduler.ListJobs,
        scheduler_pb2.ListJobsRequest(job_type=f"{m}.work", page_size=500),
        "jobs",
    )
    assert {j.id for j in ours} == {w["solo"].id, *(j.id for j in w["jobs"])}


async def test_globex_cannot_depend_on_an_acme_job(stranger, acme_world, db):
    parent = acme_world["jobs"][0].id
    m = _marker()
    err = await _refused(
        stranger.SubmitJob(
            scheduler_pb2.SubmitJobRequest(
                job=resources_pb2.JobSpec(job_type=f"{m}.work", depends_on_job_ids=[parent])
            )
        )
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()
    info = error_details(err)["ResourceInfo"]
    assert (info.resource_type, info.resource_name) == ("job", parent)
    (count,) = db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE job_type = %s", (f"{m}.work",)
    ).fetchone()
    assert count == 0


async def test_idempotency_keys_do_not_leak_across_tenants(scheduler, stranger, acme_world):
    """globex reusing acme's keys gets its own run and job, never acme's."""
    w = acme_world
    m = w["m"]
    run = await stranger.CreateRun(
        scheduler_pb2.CreateRunRequest(
            idempotency_key=f"{m}-run", jobs=[resources_pb2.JobSpec(job_type=f"{m}.work")]
        )
    )
    assert not run.existing
    assert run.run.id != w["run"].id
    assert run.run.tenant == "globex"
    job = await stranger.SubmitJob(
        scheduler_pb2.SubmitJobRequest(
            job=resources_pb2.JobSpec(job_type=f"{m}.work", idempotency_key=f"{m}-solo")
        )
    )
    assert not job.existing
    assert job.job.id != w["solo"].id
    assert job.job.tenant == "globex"
