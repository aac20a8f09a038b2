"""A whole DAG run through the ledger: readiness, cancellation cascade, derived run state,
and exactly one event per transition."""

from __future__ import annotations

import itertools

import pytest

from orchestrator_core import JobState, Reason, TransitionEvent, event_type_for, fold
from orchestrator_pg import Completion, Database, Failure, LeaseLedger, TxContext
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2
from tests.integration._dag import job_events, three_level_dag

pytestmark = pytest.mark.integration


@pytest.fixture
async def leases(database_url):
    async with Database(database_url) as db:
        yield LeaseLedger(db)


async def _claim_all(leases: LeaseLedger, job_type: str, limit: int = 500):
    return await leases.job_claim_batch(
        TxContext(tenant="acme", actor_subject="worker-1"),
        worker_id="worker-1",
        job_types=[job_type],
        limit=limit,
        tenants=["acme"],
    )


def _by_key(jobs) -> dict[str, object]:
    return {j.key: j for j in jobs}


async def _jobs_of(scheduler, run_id: str):
    reply = await scheduler.GetRunDag(scheduler_pb2.GetRunDagRequest(run_id=run_id))
    return reply


async def test_three_level_dag_readiness_cascade_and_run_state(scheduler, leases, db):
    created = await scheduler.CreateRun(
        scheduler_pb2.CreateRunRequest(name="nightly", jobs=three_level_dag())
    )
    run_id = created.run.id
    assert len(created.jobs) == 100
    assert created.run.state == common_pb2.RUN_STATE_PENDING
    states = [j.state for j in created.jobs]
    assert states.count(common_pb2.JOB_STATE_READY) == 10
    assert states.count(common_pb2.JOB_STATE_PENDING) == 90
    by_key = _by_key(created.jobs)
    assert set(by_key["c5"].depends_on) == {by_key["b5"].id, by_key["b6"].id}

    # Level 1: nine succeed, a9 fails for good.
    leased = await _claim_all(leases, "advisory.ingest")
    assert len(leased) == 10
    run = (await scheduler.GetRun(scheduler_pb2.GetRunRequest(run_id=run_id))).run
    assert run.state == common_pb2.RUN_STATE_RUNNING
    a9 = next(r for r in leased if r["key"] == "a9")
    outcomes = await leases.job_complete_many(
        TxContext(tenant="acme"),
        [Completion(r["id"], r["lease_id"], {"ok": True}) for r in leased if r["key"] != "a9"],
        tenants=["acme"],
    )
    assert all(o.ok for o in outcomes)
    failed = await leases.job_fail_many(
        TxContext(tenant="acme"),
        [Failure(a9["id"], a9["lease_id"], "schema_mismatch", "bad feed", retryable=False)],
        tenants=["acme"],
    )
    assert failed[0].ok
    assert failed[0].new_state == "dead"

    dag = await _jobs_of(scheduler, run_id)
    jobs = _by_key(dag.jobs)
    doomed_b = {"b9", "b19", "b29"}
    for i in range(30):
        job = jobs[f"b{i}"]
        if f"b{i}" in doomed_b:
            assert job.state == common_pb2.JOB_STATE_CANCELED, job.key
            assert job.reason == "upstream_failed"
        else:
            assert job.state == common_pb2.JOB_STATE_READY, job.key
            assert job.reason == "dependencies_met"
    doomed_c = {f"c{i}" for i in range(60) if {i % 30, (i + 1) % 30} & {9, 19, 29}}
    assert len(doomed_c) == 12
    for i in range(60):
        job = jobs[f"c{i}"]
        expected = (
            common_pb2.JOB_STATE_CANCELED if job.key in doomed_c else common_pb2.JOB_STATE_PENDING
        )
        assert job.state == expected, job.key
    assert jobs["a9"].state == common_pb2.JOB_STATE_DEAD
    assert len(dag.edges) == 30 + 120

    # Level 2: all 27 live VEX jobs succeed → the 48 reachable policy jobs turn ready.
    leased = await _claim_all(leases, "vex.ingest")
    assert len(leased) == 27
    await leases.job_complete_many(
        TxContext(tenant="acme"),
        [Completion(r["id"], r["lease_id"]) for r in leased],
        tenants=["acme"],
    )
    ready = await scheduler.ListJobs(
        scheduler_pb2.ListJobsRequest(
            run_id=run_id, states=[common_pb2.JOB_STATE_READY], page_size=500
        )
    )
    assert {j.key for j in ready.jobs} == {f"c{i}" for i in range(60)} - doomed_c

    # Level 3, then the run is finished: failed, because a9 is dead.
    leased = await _claim_all(leases, "policy.evaluate")
    assert len(leased) == 48
    run = (await scheduler.GetRun(scheduler_pb2.GetRunRequest(run_id=run_id))).run
    assert run.state == common_pb2.RUN_STATE_RUNNING
    await leases.job_complete_many(
        TxContext(tenant="acme"),
        [Completion(r["id"], r["lease_id"]) for r in leased],
        tenants=["acme"],
    )
    run = (await scheduler.GetRun(scheduler_pb2.GetRunRequest(run_id=run_id))).run
    assert run.state == common_pb2.RUN_STATE_FAILED
    assert dict(run.job_counts) == {"succeeded": 84, "dead": 1, "canceled": 15}
    assert run.HasField("finished_at")

    # Exactly one event per transition: each job's events chain from creation to its final
    # state, and folding them through the core state machine reproduces the row.
    events = job_events(db, run_id)
    assert set(events) == {j.id for j in dag.jobs}
    final = _by_key((await _jobs_of(scheduler, run_id)).jobs)
    for job in final.values():
        chain = events[job.id]
        assert chain[0][1] == "job.created"
        assert chain[0][2] is None
        for prev, nxt in itertools.pairwise(chain):
            assert nxt[2] == prev[3], f"{job.key}: {prev} then {nxt}"
        for _seq, type_, frm, to, *_rest in chain:
            assert type_ == event_type_for(JobState(frm) if frm else None, JobState(to))
        model = fold(
            TransitionEvent(
                type=t,
                to_state=JobState(to),
                reason=Reason(r),
                attempt=a,
                occurred_at=at,
                lease_id=lease,
                job_id=job.id,
                max_attempts=m,
            )
            for _s, t, _f, to, r, a, at, lease, m in chain
        )
        assert model is not None
        assert model.state.value == common_pb2.JobState.Name(job.state)[10:].lower()
        assert model.attempt == job.attempt
    run_events = db.execute(
        "SELECT type FROM orchestrator.events WHERE run_id = %s AND job_id IS NULL ORDER BY seq",
        (run_id,),
    ).fetchall()
    assert [t for (t,) in run_events] == ["run.created", "run.running", "run.failed"]


async def test_cancel_run_cancels_open_jobs_and_keeps_finished_ones(scheduler, leases, db):
    created = await scheduler.CreateRun(
        scheduler_pb2.CreateRunRequest(name="to-cancel", jobs=three_level_dag()[:40])
    )
    leased = await _claim_all(leases, "advisory.ingest", limit=3)
    await leases.job_complete_many(
        TxContext(tenant="acme"),
        [Completion(r["id"], r["lease_id"]) for r in leased[:2]],
        tenants=["acme"],
    )
    reply = await scheduler.CancelRun(
        scheduler_pb2.CancelRunRequest(
            run_id=created.run.id,
            operator=common_pb2.OperatorContext(reason="feed retired", ticket="OPS-1"),
        )
    )
    assert reply.run.state == common_pb2.RUN_STATE_CANCELED
    assert reply.canceled_job_count == 38
    assert dict(reply.run.job_counts) == {"succeeded": 2, "canceled": 38}
    # the canceled lease is fenced: its worker's late completion is refused
    late = await leases.job_complete_many(
        TxContext(tenant="acme"),
        [Completion(leased[2]["id"], leased[2]["lease_id"])],
        tenants=["acme"],
    )
    assert not late[0].ok
    assert late[0].error_reason == "lease_lost"
    (actor,) = db.execute(
        "SELECT DISTINCT actor_subject FROM orchestrator.events"
        " WHERE run_id = %s AND type = 'job.canceled'",
        (created.run.id,),
    ).fetchone()
    assert actor == "tester"


async def test_cancel_job_cascades_to_descendants(scheduler):
    created = await scheduler.CreateRun(scheduler_pb2.CreateRunRequest(jobs=three_level_dag()))
    a0 = _by_key(created.jobs)["a0"]
    reply = await scheduler.CancelJob(scheduler_pb2.CancelJobRequest(job_id=a0.id))
    assert reply.job.state == common_pb2.JOB_STATE_CANCELED
    assert reply.job.reason == "user_canceled"
    jobs = _by_key((await _jobs_of(scheduler, created.run.id)).jobs)
    # b0, b10, b20 depend on a0; every c with one of them as a parent is canceled too
    for key in ("b0", "b10", "b20", "c0", "c29", "c9", "c10", "c19", "c20"):
        assert jobs[key].state == common_pb2.JOB_STATE_CANCELED, key
        assert jobs[key].reason == "upstream_failed"
    assert jobs["b1"].state == common_pb2.JOB_STATE_PENDING


async def test_submit_into_open_run_waits_on_existing_parent(scheduler, leases):
    created = await scheduler.CreateRun(scheduler_pb2.CreateRunRequest(jobs=three_level_dag()[:10]))
    extra = await scheduler.SubmitJob(
        scheduler_pb2.SubmitJobRequest(
            run_id=created.run.id,
            job=three_level_dag()[10],  # b0 depends on a0, already in the run
        )
    )
    assert extra.job.state == common_pb2.JOB_STATE_PENDING
    assert extra.job.run_id == created.run.id
    a0 = _by_key(created.jobs)["a0"]
    assert list(extra.job.depends_on) == [a0.id]
    leased = await _claim_all(leases, "advisory.ingest")
    await leases.job_complete_many(
        TxContext(tenant="acme"),
        [Completion(r["id"], r["lease_id"]) for r in leased],
        tenants=["acme"],
    )
    job = (await scheduler.GetJob(scheduler_pb2.GetJobRequest(job_id=extra.job.id))).job
    assert job.state == common_pb2.JOB_STATE_READY


async def test_submitted_jobs_are_answered_as_stored(scheduler, leases, db):
    """SubmitJobs answers each job as the ledger holds it at commit: new jobs (from the
    insert itself), idempotency hits (read back) and children doomed at birth with the
    siblings that depend on them (changed after the insert, so read back too)."""
    parent = (
        await scheduler.SubmitJob(
            scheduler_pb2.SubmitJobRequest(job=resources_pb2.JobSpec(job_type="asis.parent"))
        )
    ).job
    await scheduler.CancelJob(
        scheduler_pb2.CancelJobRequest(
            job_id=parent.id, operator=common_pb2.OperatorContext(reason="gone")
        )
    )
    first = await scheduler.SubmitJob(
        scheduler_pb2.SubmitJobRequest(
            job=resources_pb2.JobSpec(job_type="asis.work", idempotency_key="asis-k1")
        )
    )

    plain = [resources_pb2.JobSpec(job_type="asis.work", key=f"p{i}") for i in range(3)]
    again = resources_pb2.JobSpec(job_type="asis.work", idempotency_key="asis-k1")
    for batch, doomed in (
        ([*plain, again], set()),
        (
            [
                resources_pb2.JobSpec(
                    job_type="asis.work", key="c", depends_on_job_ids=[parent.id]
                ),
                resources_pb2.JobSpec(job_type="asis.work", key="s", depends_on=["c"]),
                resources_pb2.JobSpec(job_type="asis.work", key="free"),
            ],
            {"c", "s"},
        ),
    ):
        reply = await scheduler.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=batch))
        assert len(reply.jobs) == len(batch)
        for job, existing in zip(reply.jobs, reply.existing, strict=True):
            stored = (await scheduler.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))).job
            assert job == stored
            if existing:
                assert job.id == first.job.id
            elif job.key in doomed:
                assert job.state == common_pb2.JOB_STATE_CANCELED
            else:
                assert job.state == common_pb2.JOB_STATE_READY
        assert list(reply.existing).count(True) == (1 if not doomed else 0)
