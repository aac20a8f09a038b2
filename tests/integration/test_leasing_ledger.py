"""LeaseLedger against the real database: fencing by lease id, idempotent completion,
retry with backoff, dead-lettering, the expiry watchdog, racing claimers, and the operator
retry of a dead job through the scheduler."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import duration_pb2

from orchestrator_pg import Completion, Database, Failure, LeaseLedger, TxContext
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(database_url):
    async with Database(database_url) as db:
        yield db


@pytest.fixture
def leases(database):
    return LeaseLedger(database, rng=random.Random(1234))


def _job_type() -> str:
    return f"l{uuid.uuid4().hex[:16]}.work"


def _policy(
    max_attempts: int = 0, initial_s: float | None = None, max_s: float | None = None
) -> common_pb2.RetryPolicy:
    policy = common_pb2.RetryPolicy(max_attempts=max_attempts)
    if initial_s is not None:
        policy.initial_backoff.CopyFrom(duration_pb2.Duration(seconds=int(initial_s)))
    if max_s is not None:
        policy.max_backoff.CopyFrom(duration_pb2.Duration(seconds=int(max_s)))
    return policy


async def _submit(scheduler, job_type: str, n: int = 1, **kwargs) -> list[resources_pb2.Job]:
    reply = await scheduler.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[resources_pb2.JobSpec(job_type=job_type, **kwargs) for _ in range(n)]
        )
    )
    return list(reply.jobs)


async def _claim(
    leases: LeaseLedger,
    job_type: str,
    limit: int = 10,
    worker: str = "worker-1",
    ctx_now: datetime | None = None,
    **kwargs,
):
    return await leases.job_claim_batch(
        TxContext(tenant="acme", actor_subject=worker, now=ctx_now),
        worker_id=worker,
        job_types=[job_type],
        limit=limit,
        tenants=["acme"],
        **kwargs,
    )


def _row(db, job_id) -> dict:
    cur = db.execute("SELECT * FROM orchestrator.jobs WHERE id = %s", (str(job_id),))
    names = [c.name for c in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def _events(db, job_id) -> list[tuple]:
    return db.execute(
        "SELECT type, from_state, to_state, reason, attempt, data FROM orchestrator.events"
        " WHERE job_id = %s ORDER BY seq",
        (str(job_id),),
    ).fetchall()


async def _get(scheduler, job_id) -> resources_pb2.Job:
    return (await scheduler.GetJob(scheduler_pb2.GetJobRequest(job_id=str(job_id)))).job


async def test_complete_with_a_wrong_lease_is_lease_lost_and_changes_nothing(scheduler, leases, db):
    job_type = _job_type()
    (job,) = await _submit(scheduler, job_type)
    (leased,) = await _claim(leases, job_type)
    before = _row(db, job.id)
    events = _events(db, job.id)
    outcomes = await leases.job_complete_many(
        TxContext(tenant="acme"),
        [Completion(leased["id"], uuid.uuid4(), {"ok": True})],
        tenants=["acme"],
    )
    assert [(o.ok, o.error_reason, o.new_state) for o in outcomes] == [
        (False, "lease_lost", "leased")
    ]
    assert _row(db, job.id) == before
    assert _events(db, job.id) == events
    # another tenant's filter does not reach the job either, even with the right lease
    outcomes = await leases.job_complete_many(
        TxContext(tenant="globex"),
        [Completion(leased["id"], leased["lease_id"])],
        tenants=["globex"],
    )
    assert not outcomes[0].ok
    assert outcomes[0].error_reason == "lease_lost"
    assert _row(db, job.id) == before
    # a wrong lease cannot fail the job either
    failed = await leases.job_fail_many(
        TxContext(tenant="acme"),
        [Failure(leased["id"], uuid.uuid4(), "http_5xx", "boom")],
        tenants=["acme"],
    )
    assert not failed[0].ok
    assert failed[0].error_reason == "lease_lost"
    assert _row(db, job.id) == before
    # the real lease still works
    ok = await leases.job_complete_many(
        TxContext(tenant="acme"), [Completion(leased["id"], leased["lease_id"])], tenants=["acme"]
    )
    assert ok[0].ok
    assert ok[0].new_state == "succeeded"


@pytest.mark.parametrize("digest", ["", "sha256:" + "ab" * 32])
async def test_completing_the_same_lease_twice(scheduler, leases, db, digest):
    job_type = _job_type()
    (job,) = await _submit(scheduler, job_type)
    (leased,) = await _claim(leases, job_type)
    done = Completion(leased["id"], leased["lease_id"], {"rows": 3}, digest)
    first = await leases.job_complete_many(TxContext(tenant="acme"), [done], tenants=["acme"])
    assert first[0].ok
    assert first[0].new_state == "succeeded"
    assert not first[0].repeated
    after_first = _row(db, job.id)
    events = _events(db, job.id)
    # a retried request with the same result is accepted and changes nothing
    second = await leases.job_complete_many(TxContext(tenant="acme"), [done], tenants=["acme"])
    assert second[0].ok
    assert second[0].error_reason == ""
    assert second[0].repeated  # acknowledged, not a second completion
    assert _row(db, job.id) == after_first
    assert _events(db, job.id) == events
    # another result on the same lease is refused
    other = Completion(leased["id"], leased["lease_id"], {"rows": 4}, "sha256:" + "cd" * 32)
    third = await leases.job_complete_many(TxContext(tenant="acme"), [other], tenants=["acme"])
    assert not third[0].ok
    assert third[0].error_reason == "lease_lost"
    assert _row(db, job.id) == after_first
    stored = await _get(scheduler, job.id)
    assert stored.state == common_pb2.JOB_STATE_SUCCEEDED
    assert stored.result["rows"] == 3
    assert stored.result_digest == digest
    assert [e[0] for e in _events(db, job.id)] == ["job.created", "job.leased", "job.succeeded"]


async def test_retryable_failure_with_attempts_left_goes_back_to_ready_with_backoff(
    scheduler, leases, db
):
    job_type = _job_type()
    (job,) = await _submit(scheduler, job_type, retry_policy=_policy(3, 60, 600))
    (leased,) = await _claim(leases, job_type)
    now = datetime.now(UTC)
    outcomes = await leases.job_fail_many(
        TxContext(tenant="acme", now=now),
        [Failure(leased["id"], leased["lease_id"], "http_5xx", "upstream 503", retryable=True)],
        tenants=["acme"],
    )
    assert outcomes[0].ok
    assert outcomes[0].new_state == "ready"
    row = _row(db, job.id)
    assert (row["state"], row["reason"], row["attempt"]) == ("ready", "retry_backoff", 1)
    assert now < row["not_before"] <= now + timedelta(seconds=60)
    assert (row["last_error_class"], row["last_error_message"], row["last_error_retryable"]) == (
        "http_5xx",
        "upstream 503",
        True,
    )
    *_, last = _events(db, job.id)
    assert last[:5] == ("job.retrying", "leased", "ready", "retry_backoff", 1)
    assert last[5]["error_class"] == "http_5xx"
    # not claimable before not_before, claimable after it
    assert await _claim(leases, job_type) == []
    later = await leases.job_claim_batch(
        TxContext(tenant="acme", now=row["not_before"] + timedelta(seconds=1)),
        worker_id="worker-2",
        job_types=[job_type],
        limit=10,
        tenants=["acme"],
    )
    assert [r["id"] for r in later] == [uuid.UUID(job.id)]
    assert later[0]["attempt"] == 2
    assert later[0]["lease_id"] != leased["lease_id"]
    # the first attempt's lease is fenced off now
    stale = await leases.job_complete_many(
        TxContext(tenant="acme"), [Completion(leased["id"], leased["lease_id"])], tenants=["acme"]
    )
    assert not stale[0].ok
    assert stale[0].error_reason == "lease_lost"


async def test_retry_after_is_honoured(scheduler, leases, db):
    job_type = _job_type()
    (job,) = await _submit(scheduler, job_type, retry_policy=_policy(5, 1, 2))
    (leased,) = await _claim(leases, job_type)
    now = datetime.now(UTC)
    await leases.job_fail_many(
        TxContext(tenant="acme", now=now),
        [Failure(leased["id"], leased["lease_id"], "http_429", "slow down", retry_after_s=120)],
        tenants=["acme"],
    )
    row = _row(db, job.id)
    assert row["state"] == "ready"
    assert row["not_before"] >= now + timedelta(seconds=120)
    assert row["not_before"] < now + timedelta(seconds=121)


async def test_throttled_attempts_spend_no_budget_and_no_backoff(scheduler, leases, db):
    # Issue 15: a 429 is the host asking us to slow down, not the job failing. With
    # max_attempts=2, any number of 429s leaves the job ready (after each Retry-After, never
    # a grown backoff), recorded in the history as `throttled`; only real failures count.
    rng = random.Random()
    throttles = rng.randint(3, 6)
    job_type = _job_type()
    (job,) = await _submit(scheduler, job_type, retry_policy=_policy(2, 60, 300))
    now = datetime.now(UTC)
    for i in range(throttles):
        (leased,) = await _claim(leases, job_type, ctx_now=now)
        retry_after = rng.choice([None, 1.0, 2.5])
        await leases.job_fail_many(
            TxContext(tenant="acme", now=now),
            [Failure(leased["id"], leased["lease_id"], "http_429", "slow down", True, retry_after)],
            tenants=["acme"],
        )
        row = _row(db, job.id)
        assert (row["state"], row["reason"]) == ("ready", "throttled")
        assert (row["attempt"], row["throttled_attempts"]) == (i + 1, i + 1)
        assert row["not_before"] == now + timedelta(seconds=retry_after or 1.0)  # no backoff
        now = row["not_before"]
    # The first real failure is attempt 1 of 2 (its backoff the first step, <= 60 s) ...
    (leased,) = await _claim(leases, job_type, ctx_now=now)
    await leases.job_fail_many(
        TxContext(tenant="acme", now=now),
        [Failure(leased["id"], leased["lease_id"], "http_5xx", "boom")],
        tenants=["acme"],
    )
    row = _row(db, job.id)
    assert (row["state"], row["reason"]) == ("ready", "retry_backoff")
    assert row["not_before"] <= now + timedelta(seconds=60)
    # ... and the second exhausts the budget.
    (leased,) = await _claim(leases, job_type, ctx_now=row["not_before"])
    await leases.job_fail_many(
        TxContext(tenant="acme", now=row["not_before"]),
        [Failure(leased["id"], leased["lease_id"], "http_5xx", "boom")],
        tenants=["acme"],
    )
    row = _row(db, job.id)
    assert (row["state"], row["reason"]) == ("dead", "attempts_exhausted")
    assert row["attempt"] == throttles + 2
    reasons = [e[3] for e in _events(db, job.id) if e[0] == "job.retrying"]
    assert reasons == ["throttled"] * throttles + ["retry_backoff"]


@pytest.mark.parametrize(
    ("max_attempts", "retryable", "reason"),
    [(1, True, "attempts_exhausted"), (5, False, "non_retryable")],
)
async def test_failure_without_a_next_attempt_is_dead_and_dead_lettered(
    scheduler, leases, db, max_attempts, retryable, reason
):
    job_type = _job_type()
    (job,) = await _submit(scheduler, job_type, retry_policy=_policy(max_attempts))
    (leased,) = await _claim(leases, job_type)
    now = datetime.now(UTC)
    outcomes = await leases.job_fail_many(
        TxContext(tenant="acme", now=now),
        [
            Failure(
                leased["id"],
                leased["lease_id"],
                "schema_mismatch",
                "field cvss missing",
                retryable=retryable,
            )
        ],
        tenants=["acme"],
    )
    assert outcomes[0].ok
    assert outcomes[0].new_state == "dead"
    row = _row(db, job.id)
    assert (row["state"], row["reason"]) == ("dead", reason)
    assert row["finished_at"] == now
    entries = db.execute(
        "SELECT tenant, job_type, error_class, last_error, attempts, retryable, status, failed_at"
        " FROM orchestrator.dead_letter WHERE job_id = %s",
        (job.id,),
    ).fetchall()
    assert entries == [
        ("acme", job_type, "schema_mismatch", "field cvss missing", 1, retryable, "pending", now)
    ]
    *_, last = _events(db, job.id)
    assert last[:4] == ("job.dead", "leased", "dead", reason)
    stored = await _get(scheduler, job.id)
    assert stored.state == common_pb2.JOB_STATE_DEAD
    assert stored.last_error.error_class == common_pb2.ERROR_CLASS_SCHEMA_MISMATCH
    assert stored.last_error.retryable == retryable


@pytest.mark.parametrize(
    ("max_attempts", "state", "reason"),
    [(3, "ready", "lease_expired"), (1, "dead", "attempts_exhausted")],
)
async def test_expired_leases_are_retried_or_dead(
    scheduler, leases, db, max_attempts, state, reason
):
    job_type = _job_type()
    (job,) = await _submit(scheduler, job_type, retry_policy=_policy(max_attempts, 1, 1))
    (leased,) = await _claim(leases, job_type, lease_ttl_s=5)
    # not yet expired: the watchdog leaves it alone
    early = await leases.lease_expire_batch(
        TxContext(tenant="acme", now=leased["lease_expires_at"]), limit=10_000
    )
    assert uuid.UUID(job.id) not in {o.job_id for o in early}
    assert _row(db, job.id)["state"] == "leased"
    # past expiry
    at = leased["lease_expires_at"] + timedelta(seconds=1)
    outcomes = await leases.lease_expire_batch(
        TxContext(tenant="acme", actor_subject="watchdog", now=at), limit=10_000
    )
    mine = [o for o in outcomes if o.job_id == uuid.UUID(job.id)]
    assert [(o.ok, o.new_state, o.lease_id) for o in mine] == [(True, state, leased["lease_id"])]
    row = _row(db, job.id)
    assert (row["state"], row["reason"], row["last_error_class"]) == (
        state,
        reason,
        "lease_expired",
    )
    *_, last = _events(db, job.id)
    assert last[2:4] == (state, reason)
    dead_letters = db.execute(
        "SELECT error_class, attempts FROM orchestrator.dead_letter WHERE job_id = %s", (job.id,)
    ).fetchall()
    if state == "ready":
        assert at < row["not_before"] <= at + timedelta(seconds=1)
        assert dead_letters == []
    else:
        assert dead_letters == [("lease_expired", 1)]
    # the expired lease is fenced off
    late = await leases.job_complete_many(
        TxContext(tenant="acme"), [Completion(leased["id"], leased["lease_id"])], tenants=["acme"]
    )
    assert not late[0].ok
    assert late[0].error_reason == "lease_lost"
    # a second pass finds nothing more to do for this job
    again = await leases.lease_expire_batch(TxContext(tenant="acme", now=at), limit=10_000)
    assert uuid.UUID(job.id) not in {o.job_id for o in again}


async def test_racing_claimers_never_lease_a_job_twice(scheduler, database, db):
    job_type = _job_type()
    jobs = await _submit(scheduler, job_type, n=25)
    claimers = [LeaseLedger(database) for _ in range(4)]
    seen: list[uuid.UUID] = []
    for _ in range(10):
        batches = await asyncio.gather(
            *(_claim(c, job_type, limit=10, worker=f"worker-{i}") for i, c in enumerate(claimers))
        )
        got = [r["id"] for batch in batches for r in batch]
        seen += got
        assert all(len(b) <= 10 for b in batches)
        if not got:
            break
    assert len(seen) == len(set(seen)) == 25
    assert set(seen) == {uuid.UUID(j.id) for j in jobs}
    rows = db.execute(
        "SELECT attempt, count(DISTINCT lease_id) FROM orchestrator.jobs WHERE job_type = %s"
        " GROUP BY attempt",
        (job_type,),
    ).fetchall()
    assert rows == [(1, 25)]
    (leased_events,) = db.execute(
        "SELECT count(*) FROM orchestrator.events WHERE job_type = %s AND type = 'job.leased'",
        (job_type,),
    ).fetchone()
    assert leased_events == 25


async def _dead_job_in_run(scheduler, leases, db, job_type: str):
    created = await scheduler.CreateRun(
        scheduler_pb2.CreateRunRequest(
            name=job_type,
            jobs=[
                resources_pb2.JobSpec(key="a", job_type=job_type, retry_policy=_policy(2)),
                resources_pb2.JobSpec(key="b", job_type=job_type, depends_on=["a"]),
            ],
        )
    )
    a, b = created.jobs
    for _ in range(2):
        (leased,) = await _claim(leases, job_type)
        await leases.job_fail_many(
            TxContext(tenant="acme", now=datetime.now(UTC)),
            [Failure(leased["id"], leased["lease_id"], "timeout", "took too long")],
            tenants=["acme"],
        )
        # skip the backoff (no state change, so no event)
        db.execute(
            "UPDATE orchestrator.jobs SET not_before = now() - interval '1 second'"
            " WHERE id = %s AND state = 'ready'",
            (leased["id"],),
        )
    return created.run, a, b


async def test_operator_retry_of_a_dead_job_reopens_its_run(scheduler, leases, db):
    job_type = _job_type()
    run, a, b = await _dead_job_in_run(scheduler, leases, db, job_type)
    dead = await _get(scheduler, a.id)
    assert (dead.state, dead.reason, dead.attempt) == (
        common_pb2.JOB_STATE_DEAD,
        "attempts_exhausted",
        2,
    )
    failed = (await scheduler.GetRun(scheduler_pb2.GetRunRequest(run_id=run.id))).run
    assert failed.state == common_pb2.RUN_STATE_FAILED
    assert failed.HasField("finished_at")
    assert (await _get(scheduler, b.id)).state == common_pb2.JOB_STATE_CANCELED

    reply = await scheduler.RetryJob(
        scheduler_pb2.RetryJobRequest(
            job_id=a.id, operator=common_pb2.OperatorContext(reason="feed fixed", ticket="OPS-9")
        )
    )
    job = reply.job
    assert (job.state, job.reason) == (common_pb2.JOB_STATE_READY, "operator_retry")
    assert job.retry_policy.max_attempts == 3  # room for one more attempt
    assert not job.HasField("lease")
    assert not job.HasField("finished_at")
    reopened = (await scheduler.GetRun(scheduler_pb2.GetRunRequest(run_id=run.id))).run
    assert reopened.state == common_pb2.RUN_STATE_RUNNING
    assert not reopened.HasField("finished_at")
    *_, last = _events(db, a.id)
    assert last[:4] == ("job.retried", "dead", "ready", "operator_retry")
    (actor,) = db.execute(
        "SELECT actor_subject FROM orchestrator.events WHERE job_id = %s AND type = 'job.retried'",
        (a.id,),
    ).fetchone()
    assert actor == "tester"
    run_events = [
        t
        for (t,) in db.execute(
            "SELECT type FROM orchestrator.events"
            " WHERE run_id = %s AND job_id IS NULL ORDER BY seq",
            (run.id,),
        ).fetchall()
    ]
    assert run_events == ["run.created", "run.running", "run.failed", "run.running"]
    # the retried job can be leased and completed; the run then finishes
    (leased,) = await _claim(leases, job_type)
    assert leased["id"] == uuid.UUID(a.id)
    assert leased["attempt"] == 3
    done = await leases.job_complete_many(
        TxContext(tenant="acme"), [Completion(leased["id"], leased["lease_id"])], tenants=["acme"]
    )
    assert done[0].ok
    final = (await scheduler.GetRun(scheduler_pb2.GetRunRequest(run_id=run.id))).run
    assert final.state == common_pb2.RUN_STATE_CANCELED  # b was canceled upstream_failed
    assert dict(final.job_counts) == {"succeeded": 1, "canceled": 1}


async def test_operator_retry_marks_the_dead_letter_entry_replayed(scheduler, leases, db):
    """DeadLetterStatus REPLAYED: 'An operator retried or replayed the job; the job left the
    DEAD state.'"""
    job_type = _job_type()
    _run, a, _b = await _dead_job_in_run(scheduler, leases, db, job_type)
    assert db.execute(
        "SELECT status FROM orchestrator.dead_letter WHERE job_id = %s", (a.id,)
    ).fetchall() == [("pending",)]
    await scheduler.RetryJob(scheduler_pb2.RetryJobRequest(job_id=a.id))
    assert db.execute(
        "SELECT status FROM orchestrator.dead_letter WHERE job_id = %s", (a.id,)
    ).fetchall() == [("replayed",)]
