"""Idempotency keys under concurrency: one job (one run) per key, whoever wins the race, with
`existing` telling each caller whether it created or found it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from google.protobuf import struct_pb2

from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2

pytestmark = pytest.mark.integration


def _marker() -> str:
    return f"i{uuid.uuid4().hex[:16]}"


def _spec(
    job_type: str, key: str = "", idempotency_key: str = "", deps: tuple[str, ...] = (), **payload
) -> resources_pb2.JobSpec:
    body = struct_pb2.Struct()
    body.update(payload)
    return resources_pb2.JobSpec(
        job_type=job_type,
        key=key,
        idempotency_key=idempotency_key,
        depends_on=list(deps),
        payload=body,
    )


def _jobs_with_key(db, key: str) -> list[str]:
    rows = db.execute(
        "SELECT id::text FROM orchestrator.jobs WHERE tenant = 'acme' AND idempotency_key = %s",
        (key,),
    ).fetchall()
    return [r for (r,) in rows]


def _created_events(db, job_ids: list[str]) -> int:
    (n,) = db.execute(
        "SELECT count(*) FROM orchestrator.events WHERE type = 'job.created'"
        " AND job_id = ANY(%s::uuid[])",
        (job_ids,),
    ).fetchone()
    return n


async def test_fifty_concurrent_submits_with_one_key_create_one_job(scheduler, db):
    m = _marker()
    key = f"{m}-key"
    replies = await asyncio.gather(
        *(
            scheduler.SubmitJob(
                scheduler_pb2.SubmitJobRequest(
                    job=_spec(f"{m}.work", idempotency_key=key, caller=i)
                )
            )
            for i in range(50)
        )
    )
    ids = {r.job.id for r in replies}
    assert len(ids) == 1, ids
    assert sorted(r.existing for r in replies) == [False] + [True] * 49
    winner = next(r for r in replies if not r.existing)
    # every caller sees the stored job, i.e. the winner's payload
    assert all(r.job == winner.job for r in replies)
    assert winner.job.idempotency_key == key
    assert _jobs_with_key(db, key) == [winner.job.id]
    assert _created_events(db, [winner.job.id]) == 1
    (events,) = db.execute(
        "SELECT count(*) FROM orchestrator.events WHERE data->>'idempotency_key' = %s", (key,)
    ).fetchone()
    assert events == 1
    # and later it is still the same job
    later = await scheduler.SubmitJob(
        scheduler_pb2.SubmitJobRequest(job=_spec(f"{m}.work", idempotency_key=key, caller=999))
    )
    assert later.existing
    assert later.job.id == winner.job.id


async def test_submit_jobs_batch_with_a_shared_key_returns_one_job_twice(scheduler, db):
    m = _marker()
    key = f"{m}-key"
    reply = await scheduler.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[
                _spec(f"{m}.work", idempotency_key=key, n=1),
                _spec(f"{m}.work", n=2),
                _spec(f"{m}.work", idempotency_key=key, n=3),
            ]
        )
    )
    first, plain, second = reply.jobs
    assert first.id == second.id
    assert first == second
    assert plain.id != first.id
    assert list(reply.existing) == [False, False, True]
    assert first.payload["n"] == 1
    assert _jobs_with_key(db, key) == [first.id]
    assert _created_events(db, [first.id]) == 1
    # a second batch finds it
    again = await scheduler.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[
                _spec(f"{m}.work", idempotency_key=key, n=4),
            ]
        )
    )
    assert list(again.existing) == [True]
    assert again.jobs[0].id == first.id


async def test_submit_jobs_child_of_a_deduplicated_parent_waits_on_the_existing_job(scheduler):
    """A batch whose parent spec matches an existing job by idempotency key: the child
    depends on that existing job."""
    m = _marker()
    key = f"{m}-parent"
    first = await scheduler.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[
                _spec(f"{m}.work", key="p", idempotency_key=key),
            ]
        )
    )
    parent = first.jobs[0]
    reply = await scheduler.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[
                _spec(f"{m}.work", key="p", idempotency_key=key),
                _spec(f"{m}.work", key="c", deps=("p",)),
            ]
        )
    )
    assert list(reply.existing) == [True, False]
    assert reply.jobs[0].id == parent.id
    child = reply.jobs[1]
    assert list(child.depends_on) == [parent.id]
    assert child.state == common_pb2.JOB_STATE_PENDING


def _run_request(m: str, key: str) -> scheduler_pb2.CreateRunRequest:
    return scheduler_pb2.CreateRunRequest(
        name=m,
        idempotency_key=key,
        jobs=[
            _spec(f"{m}.a", key="a"),
            _spec(f"{m}.b", key="b", deps=("a",)),
            _spec(f"{m}.c", key="c", deps=("a", "b")),
        ],
    )


def _runs_with_key(db, key: str) -> list[str]:
    rows = db.execute(
        "SELECT id::text FROM orchestrator.runs WHERE tenant = 'acme' AND idempotency_key = %s",
        (key,),
    ).fetchall()
    return [r for (r,) in rows]


def _run_rows(db, run_id: str) -> tuple[int, int]:
    (jobs,) = db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE run_id = %s", (run_id,)
    ).fetchone()
    (created,) = db.execute(
        "SELECT count(*) FROM orchestrator.events WHERE run_id = %s"
        " AND type IN ('run.created', 'job.created')",
        (run_id,),
    ).fetchone()
    return jobs, created


async def test_create_run_twice_with_one_key_returns_the_same_run(scheduler, db):
    m = _marker()
    key = f"{m}-run"
    first = await scheduler.CreateRun(_run_request(m, key))
    second = await scheduler.CreateRun(_run_request(m, key))
    assert (first.existing, second.existing) == (False, True)
    assert second.run.id == first.run.id
    assert [j.id for j in second.jobs] == [j.id for j in first.jobs]
    assert [j.key for j in second.jobs] == ["a", "b", "c"]
    assert second.run.idempotency_key == key
    assert dict(second.run.job_counts) == {"ready": 1, "pending": 2}
    assert _runs_with_key(db, key) == [first.run.id]
    assert _run_rows(db, first.run.id) == (3, 4)
    # a different request body under the same key still returns the first run
    other = scheduler_pb2.CreateRunRequest(idempotency_key=key, jobs=[_spec(f"{m}.z", key="z")])
    third = await scheduler.CreateRun(other)
    assert third.existing
    assert third.run.id == first.run.id
    assert [j.key for j in third.jobs] == ["a", "b", "c"]
    assert _run_rows(db, first.run.id) == (3, 4)


async def test_ten_concurrent_create_runs_with_one_key_make_one_run(scheduler, db):
    m = _marker()
    key = f"{m}-run"
    replies = await asyncio.gather(*(scheduler.CreateRun(_run_request(m, key)) for _ in range(10)))
    assert len({r.run.id for r in replies}) == 1
    assert sorted(r.existing for r in replies) == [False] + [True] * 9
    winner = next(r for r in replies if not r.existing)
    for reply in replies:
        assert [j.id for j in reply.jobs] == [j.id for j in winner.jobs]
        assert [j.key for j in reply.jobs] == ["a", "b", "c"]
    assert _runs_with_key(db, key) == [winner.run.id]
    assert _run_rows(db, winner.run.id) == (3, 4)
    (orphans,) = db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE job_type = %s", (f"{m}.a",)
    ).fetchone()
    assert orphans == 1


async def test_idempotency_keys_are_per_tenant(scheduler, stranger):
    m = _marker()
    key = f"{m}-key"
    ours = await scheduler.SubmitJob(
        scheduler_pb2.SubmitJobRequest(job=_spec(f"{m}.work", idempotency_key=key))
    )
    theirs = await stranger.SubmitJob(
        scheduler_pb2.SubmitJobRequest(job=_spec(f"{m}.work", idempotency_key=key))
    )
    assert not ours.existing
    assert not theirs.existing
    assert ours.job.id != theirs.job.id
    assert (ours.job.tenant, theirs.job.tenant) == ("acme", "globex")
    run_ours = await scheduler.CreateRun(_run_request(m, f"{m}-run"))
    run_theirs = await stranger.CreateRun(_run_request(m, f"{m}-run"))
    assert not run_ours.existing
    assert not run_theirs.existing
    assert run_ours.run.id != run_theirs.run.id
