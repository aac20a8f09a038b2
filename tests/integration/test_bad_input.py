"""Bad input is refused with the right status and google.rpc details, and leaves nothing
behind: no run, job, source or event row is written by a refused call."""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2, timestamp_pb2

from orchestrator_grpckit import error_details
from orchestrator_pg import Completion, Database, LeaseLedger, TxContext
from stella.orchestrator.v1 import (
    common_pb2,
    resources_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from tests.conftest import Stub

pytestmark = pytest.mark.integration

LIMIT = 262_144  # MAX_PAYLOAD_BYTES: canonical JSON of a payload


# ------------------------------------------------------------------ helpers


def _marker() -> str:
    """A unique, lowercase tag usable as run name, job type, key, source name and label."""
    return f"m{uuid.uuid4().hex[:16]}"


def _job(
    marker: str, key: str = "", *, deps: tuple[str, ...] = (), job_type: str | None = None, **kwargs
) -> resources_pb2.JobSpec:
    """A JobSpec tagged with ``marker`` (label, key prefix, default job type)."""
    return resources_pb2.JobSpec(
        key=f"{marker}-{key}" if key else "",
        job_type=job_type if job_type is not None else f"{marker}.work",
        depends_on=[f"{marker}-{d}" for d in deps],
        labels={"probe": marker},
        **kwargs,
    )


def _run(
    marker: str, jobs: list[resources_pb2.JobSpec], **kwargs
) -> scheduler_pb2.CreateRunRequest:
    return scheduler_pb2.CreateRunRequest(
        name=marker, labels={"probe": marker}, jobs=jobs, **kwargs
    )


def footprint(db, marker: str) -> dict[str, int]:
    """Rows carrying ``marker`` in every table a scheduler call may write."""
    like = marker + "%"
    params = {"m": marker, "l": like}
    jobs_sql = (
        "SELECT id FROM orchestrator.jobs WHERE labels->>'probe' = %(m)s OR key LIKE %(l)s"
        " OR idempotency_key LIKE %(l)s OR job_type LIKE %(l)s"
    )
    runs_sql = (
        "SELECT id FROM orchestrator.runs WHERE name LIKE %(l)s OR labels->>'probe' = %(m)s"
        " OR idempotency_key LIKE %(l)s"
    )
    sources_sql = "SELECT id FROM orchestrator.sources WHERE name LIKE %(l)s"
    counts = {}
    for table, sql in (("jobs", jobs_sql), ("runs", runs_sql), ("sources", sources_sql)):
        counts[table] = db.execute(f"SELECT count(*) FROM ({sql}) t", params).fetchone()[0]
    counts["events"] = db.execute(
        "SELECT count(*) FROM orchestrator.events e"
        " WHERE e.data->>'name' LIKE %(l)s OR e.data->>'key' LIKE %(l)s"
        " OR e.data->>'idempotency_key' LIKE %(l)s OR e.job_type LIKE %(l)s"
        f" OR e.job_id IN ({jobs_sql}) OR e.run_id IN ({runs_sql})"
        f" OR e.source_id IN ({sources_sql})",
        params,
    ).fetchone()[0]
    return counts


async def _refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def _violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    details = error_details(err)
    assert "BadRequest" in details, f"no BadRequest in {err.code()} {err.details()}"
    return {v.field: v.description for v in details["BadRequest"].field_violations}


def _assert_invalid(err: grpc.aio.AioRpcError, field: str, *words: str) -> None:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    details = error_details(err)
    assert details["ErrorInfo"].reason == "INVALID_ARGUMENT"
    violations = _violations(err)
    assert field in violations, f"{field} not in {violations}"
    for word in words:
        assert word in violations[field], f"{word!r} not in {violations[field]!r}"


def _assert_not_found(err: grpc.aio.AioRpcError, resource_type: str, name: str) -> None:
    assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()
    details = error_details(err)
    info = details["ResourceInfo"]
    assert (info.resource_type, info.resource_name) == (resource_type, name)
    assert details["ErrorInfo"].reason == f"{resource_type.upper()}_NOT_FOUND"
    assert details["ErrorInfo"].metadata["resource_name"] == name


def _ts(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def _payload(**values) -> struct_pb2.Struct:
    body = struct_pb2.Struct()
    body.update(values)
    return body


@pytest.fixture
async def leases(database_url):
    async with Database(database_url) as database:
        yield LeaseLedger(database)


async def _succeeded_job(scheduler, leases: LeaseLedger, marker: str) -> resources_pb2.Job:
    job = (await scheduler.SubmitJob(scheduler_pb2.SubmitJobRequest(job=_job(marker)))).job
    leased = await leases.job_claim_batch(
        TxContext(tenant="acme", actor_subject="worker-1"),
        worker_id="worker-1",
        job_types=[job.job_type],
        limit=5,
        tenants=["acme"],
    )
    assert [r["id"] for r in leased] == [uuid.UUID(job.id)]
    done = await leases.job_complete_many(
        TxContext(tenant="acme"),
        [Completion(leased[0]["id"], leased[0]["lease_id"])],
        tenants=["acme"],
    )
    assert done[0].ok
    return (await scheduler.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))).job


def _event_count(db, column: str, value: str) -> int:
    return db.execute(
        f"SELECT count(*) FROM orchestrator.events WHERE {column} = %s", (value,)
    ).fetchone()[0]


# ------------------------------------------------------------------ unknown ids → NOT_FOUND

_Build = Callable[[str, str], object]

UNKNOWN_ID_CASES: list[tuple[str, _Build, str]] = [
    ("GetJob", lambda i, m: scheduler_pb2.GetJobRequest(job_id=i), "job"),
    ("CancelJob", lambda i, m: scheduler_pb2.CancelJobRequest(job_id=i), "job"),
    ("RetryJob", lambda i, m: scheduler_pb2.RetryJobRequest(job_id=i), "job"),
    ("ListJobEvents", lambda i, m: scheduler_pb2.ListJobEventsRequest(job_id=i), "job"),
    ("GetRun", lambda i, m: scheduler_pb2.GetRunRequest(run_id=i), "run"),
    ("GetRunDag", lambda i, m: scheduler_pb2.GetRunDagRequest(run_id=i), "run"),
    ("CancelRun", lambda i, m: scheduler_pb2.CancelRunRequest(run_id=i), "run"),
    ("GetSource", lambda i, m: scheduler_pb2.GetSourceRequest(source_id=i), "source"),
    ("DeleteSource", lambda i, m: scheduler_pb2.DeleteSourceRequest(source_id=i), "source"),
    (
        "UpdateSource",
        lambda i, m: scheduler_pb2.UpdateSourceRequest(
            source=resources_pb2.Source(id=i, enabled=True),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
        ),
        "source",
    ),
    ("SubmitJob", lambda i, m: scheduler_pb2.SubmitJobRequest(run_id=i, job=_job(m, "a")), "run"),
    (
        "SubmitJob",
        lambda i, m: scheduler_pb2.SubmitJobRequest(job=_job(m, "a", depends_on_job_ids=[i])),
        "job",
    ),
    (
        "SubmitJob",
        lambda i, m: scheduler_pb2.SubmitJobRequest(job=_job(m, "a", source_id=i)),
        "source",
    ),
    ("CreateRun", lambda i, m: _run(m, [_job(m, "a")], source_id=i), "source"),
    ("CreateRun", lambda i, m: _run(m, [_job(m, "a", source_id=i)]), "source"),
    (
        "CreateRun",
        lambda i, m: _run(m, [_job(m, "a", depends_on_job_ids=[i])]),
        "job",
    ),
]


@pytest.mark.parametrize(("method", "build", "resource_type"), UNKNOWN_ID_CASES)
async def test_unknown_id_is_not_found_with_resource_info(
    scheduler, db, method, build, resource_type
):
    marker = _marker()
    missing = str(uuid.uuid4())
    before = footprint(db, marker)
    err = await _refused(getattr(scheduler, method)(build(missing, marker)))
    _assert_not_found(err, resource_type, missing)
    assert footprint(db, marker) == before == {"jobs": 0, "runs": 0, "sources": 0, "events": 0}


# ------------------------------------------------------------------ malformed ids

MALFORMED_ID_CASES: list[tuple[str, Callable[[str], object], str]] = [
    ("GetJob", lambda v: scheduler_pb2.GetJobRequest(job_id=v), "job_id"),
    ("CancelJob", lambda v: scheduler_pb2.CancelJobRequest(job_id=v), "job_id"),
    ("RetryJob", lambda v: scheduler_pb2.RetryJobRequest(job_id=v), "job_id"),
    ("ListJobEvents", lambda v: scheduler_pb2.ListJobEventsRequest(job_id=v), "job_id"),
    ("GetRun", lambda v: scheduler_pb2.GetRunRequest(run_id=v), "run_id"),
    ("GetRunDag", lambda v: scheduler_pb2.GetRunDagRequest(run_id=v), "run_id"),
    ("CancelRun", lambda v: scheduler_pb2.CancelRunRequest(run_id=v), "run_id"),
    ("GetSource", lambda v: scheduler_pb2.GetSourceRequest(source_id=v), "source_id"),
    ("DeleteSource", lambda v: scheduler_pb2.DeleteSourceRequest(source_id=v), "source_id"),
    (
        "UpdateSource",
        lambda v: scheduler_pb2.UpdateSourceRequest(
            source=resources_pb2.Source(id=v),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
        ),
        "source.id",
    ),
]


@pytest.mark.parametrize("value", ["nope", ""])
@pytest.mark.parametrize(("method", "build", "field"), MALFORMED_ID_CASES)
async def test_malformed_or_missing_id_is_invalid_argument(scheduler, method, build, field, value):
    err = await _refused(getattr(scheduler, method)(build(value)))
    _assert_invalid(err, field, "UUID" if value else "required")
    if value:
        assert "'nope'" in _violations(err)[field]


OPTIONAL_ID_CASES: list[tuple[str, Callable[[str], object], str]] = [
    ("ListJobs", lambda m: scheduler_pb2.ListJobsRequest(run_id="nope"), "run_id"),
    ("ListJobs", lambda m: scheduler_pb2.ListJobsRequest(source_id="nope"), "source_id"),
    ("ListRuns", lambda m: scheduler_pb2.ListRunsRequest(source_id="nope"), "source_id"),
    (
        "SubmitJob",
        lambda m: scheduler_pb2.SubmitJobRequest(run_id="nope", job=_job(m, "a")),
        "run_id",
    ),
    (
        "SubmitJob",
        lambda m: scheduler_pb2.SubmitJobRequest(job=_job(m, "a", source_id="nope")),
        "job.source_id",
    ),
    (
        "SubmitJob",
        lambda m: scheduler_pb2.SubmitJobRequest(job=_job(m, "a", depends_on_job_ids=["nope"])),
        "job.depends_on_job_ids[0]",
    ),
    (
        "SubmitJobs",
        lambda m: scheduler_pb2.SubmitJobsRequest(
            jobs=[_job(m, "a"), _job(m, "b", source_id="nope")]
        ),
        "jobs[1].source_id",
    ),
    ("CreateRun", lambda m: _run(m, [_job(m, "a")], source_id="nope"), "source_id"),
    (
        "CreateRun",
        lambda m: _run(m, [_job(m, "a"), _job(m, "b", depends_on_job_ids=["nope"])]),
        "jobs[1].depends_on_job_ids[0]",
    ),
]


@pytest.mark.parametrize(("method", "build", "field"), OPTIONAL_ID_CASES)
async def test_malformed_optional_id_is_invalid_argument(scheduler, db, method, build, field):
    marker = _marker()
    err = await _refused(getattr(scheduler, method)(build(marker)))
    _assert_invalid(err, field, "UUID", "'nope'")
    assert footprint(db, marker) == {"jobs": 0, "runs": 0, "sources": 0, "events": 0}


# ------------------------------------------------------------------ CreateRun validation


async def test_cycle_is_refused_and_the_violation_names_the_cycle_path(scheduler, db):
    m = _marker()
    jobs = [
        _job(m, "a", deps=("c",)),
        _job(m, "b", deps=("a",)),
        _job(m, "c", deps=("b",)),
        _job(m, "free"),  # not on the cycle
    ]
    err = await _refused(scheduler.CreateRun(_run(m, jobs)))
    _assert_invalid(err, "jobs", "cycle")
    description = _violations(err)["jobs"]
    path = description.split("cycle:", 1)[1].strip().split(" → ")
    assert path[0] == path[-1], description
    assert set(path) == {f"{m}-a", f"{m}-b", f"{m}-c"}, description
    assert len(path) == 4
    parents = {f"{m}-a": f"{m}-c", f"{m}-b": f"{m}-a", f"{m}-c": f"{m}-b"}
    for child, parent in itertools.pairwise(path):
        assert parents[child] == parent, f"{child} does not depend on {parent}: {description}"
    assert f"{m}-free" not in description
    assert footprint(db, m) == {"jobs": 0, "runs": 0, "sources": 0, "events": 0}


def _window(start: datetime, end: datetime) -> common_pb2.TimeWindow:
    return common_pb2.TimeWindow(start=_ts(start), end=_ts(end))


T0 = datetime(2025, 3, 1, tzinfo=UTC)

CREATE_RUN_INVALID: list[tuple[str, Callable[[str], list], str, tuple[str, ...]]] = [
    ("self_dependency", lambda m: [_job(m, "a", deps=("a",))], "jobs[0].depends_on", ("itself",)),
    (
        "unknown_dependency",
        lambda m: [_job(m, "a"), _job(m, "b", deps=("ghost",))],
        "jobs[1].depends_on",
        ("ghost",),
    ),
    (
        "empty_dependency",
        lambda m: [
            resources_pb2.JobSpec(
                key=f"{m}-a", job_type=f"{m}.work", depends_on=[""], labels={"probe": m}
            )
        ],
        "jobs[0].depends_on[0]",
        ("key",),
    ),
    (
        "duplicate_key",
        lambda m: [_job(m, "a"), _job(m, "b"), _job(m, "a")],
        "jobs[2].key",
        ("already used", "jobs[0]"),
    ),
    (
        "bad_key",
        lambda m: [
            resources_pb2.JobSpec(key="-bad key", job_type=f"{m}.work", labels={"probe": m})
        ],
        "jobs[0].key",
        ("must match",),
    ),
    ("missing_job_type", lambda m: [_job(m, "a", job_type="")], "jobs[0].job_type", ("required",)),
    (
        "bad_job_type",
        lambda m: [_job(m, "a", job_type="Advisory Ingest!")],
        "jobs[0].job_type",
        ("must match",),
    ),
    (
        "job_type_leading_digit",
        lambda m: [_job(m, "a", job_type="9ingest")],
        "jobs[0].job_type",
        ("must match",),
    ),
    ("priority_too_high", lambda m: [_job(m, "a", priority=1001)], "jobs[0].priority", ("1001",)),
    ("priority_too_low", lambda m: [_job(m, "a", priority=-1001)], "jobs[0].priority", ("-1001",)),
    (
        "oversize_payload",
        lambda m: [_job(m, "a", payload=_payload(blob="x" * (LIMIT - 10)))],
        "jobs[0].payload",
        (str(LIMIT + 1), str(LIMIT)),
    ),
    (
        "max_attempts_101",
        lambda m: [_job(m, "a", retry_policy=common_pb2.RetryPolicy(max_attempts=101))],
        "jobs[0].retry_policy.max_attempts",
        ("101",),
    ),
    (
        "max_attempts_negative",
        lambda m: [_job(m, "a", retry_policy=common_pb2.RetryPolicy(max_attempts=-1))],
        "jobs[0].retry_policy.max_attempts",
        ("-1",),
    ),
    (
        "window_end_equals_start",
        lambda m: [_job(m, "a", event_time_window=_window(T0, T0))],
        "jobs[0].event_time_window",
        ("start < end",),
    ),
    (
        "window_end_before_start",
        lambda m: [_job(m, "a", event_time_window=_window(T0, T0 - timedelta(hours=1)))],
        "jobs[0].event_time_window",
        ("start < end",),
    ),
    (
        "window_without_end",
        lambda m: [_job(m, "a", event_time_window=common_pb2.TimeWindow(start=_ts(T0)))],
        "jobs[0].event_time_window",
        ("start < end",),
    ),
    ("no_jobs", lambda m: [], "jobs", ("at least one",)),
]


@pytest.mark.parametrize(
    ("build", "field", "words"),
    [pytest.param(b, f, w, id=name) for name, b, f, w in CREATE_RUN_INVALID],
)
async def test_create_run_refuses_invalid_jobs_and_writes_nothing(
    scheduler, db, build, field, words
):
    m = _marker()
    before = footprint(db, m)
    err = await _refused(scheduler.CreateRun(_run(m, build(m))))
    _assert_invalid(err, field, *words)
    assert footprint(db, m) == before == {"jobs": 0, "runs": 0, "sources": 0, "events": 0}


async def test_submit_jobs_reports_every_bad_spec_at_once(scheduler, db):
    m = _marker()
    err = await _refused(
        scheduler.SubmitJobs(
            scheduler_pb2.SubmitJobsRequest(
                jobs=[
                    _job(m, "a", job_type=""),
                    _job(m, "b", priority=5000),
                    _job(m, "c", retry_policy=common_pb2.RetryPolicy(max_attempts=101)),
                ]
            )
        )
    )
    violations = _violations(err)
    assert {"jobs[0].job_type", "jobs[1].priority", "jobs[2].retry_policy.max_attempts"} <= set(
        violations
    )
    assert footprint(db, m) == {"jobs": 0, "runs": 0, "sources": 0, "events": 0}


async def test_limits_at_the_boundary_are_accepted(scheduler):
    m = _marker()
    # canonical JSON {"blob":"xxx…"} is 11 bytes plus the string: exactly at the limit
    at_limit = _payload(blob="x" * (LIMIT - 11))
    reply = await scheduler.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[
                _job(m, "a", payload=at_limit),
                _job(m, "b", retry_policy=common_pb2.RetryPolicy(max_attempts=0)),
                _job(m, "c", retry_policy=common_pb2.RetryPolicy(max_attempts=100), priority=1000),
                _job(m, "d", priority=-1000),
            ]
        )
    )
    a, b, c, d = reply.jobs
    assert len(a.payload["blob"]) == LIMIT - 11
    assert b.retry_policy.max_attempts == 5  # 0 means the server default
    assert c.retry_policy.max_attempts == 100
    assert (c.priority, d.priority) == (1000, -1000)
    err = await _refused(
        scheduler.SubmitJob(
            scheduler_pb2.SubmitJobRequest(
                job=_job(m, "e", payload=_payload(blob="x" * (LIMIT - 10)))
            )
        )
    )
    _assert_invalid(err, "job.payload", str(LIMIT + 1))


async def test_create_run_with_unknown_source_leaves_no_run(scheduler, db):
    m = _marker()
    missing = str(uuid.uuid4())
    err = await _refused(
        scheduler.CreateRun(
            _run(
                m,
                [_job(m, "a"), _job(m, "b", deps=("a",))],
                source_id=missing,
                idempotency_key=f"{m}-run",
            )
        )
    )
    _assert_not_found(err, "source", missing)
    assert footprint(db, m) == {"jobs": 0, "runs": 0, "sources": 0, "events": 0}
    # and the idempotency key was not consumed: a correct retry creates the run
    ok = await scheduler.CreateRun(
        _run(m, [_job(m, "a"), _job(m, "b", deps=("a",))], idempotency_key=f"{m}-run")
    )
    assert not ok.existing
    assert len(ok.jobs) == 2


@pytest.mark.parametrize("colliding_has_children", [False, True], ids=["leaf", "with_child"])
async def test_job_idempotency_collision_inside_create_run_is_all_or_nothing(
    scheduler, db, colliding_has_children
):
    m = _marker()
    taken = f"{m}-idem-taken"
    standalone = (
        await scheduler.SubmitJob(
            scheduler_pb2.SubmitJobRequest(job=_job(m, "solo", idempotency_key=taken))
        )
    ).job
    before = footprint(db, m)
    assert before == {"jobs": 1, "runs": 0, "sources": 0, "events": 1}
    jobs = [
        _job(m, "a", idempotency_key=f"{m}-idem-fresh"),
        _job(m, "b", deps=("a",), idempotency_key=taken),
    ]
    if colliding_has_children:
        jobs.append(_job(m, "c", deps=("b",)))
    err = await _refused(scheduler.CreateRun(_run(m, jobs, idempotency_key=f"{m}-run")))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS, err.details()
    info = error_details(err)["ErrorInfo"]
    assert info.reason == "JOB_IDEMPOTENCY_KEY_TAKEN"
    assert info.metadata["idempotency_keys"] == taken
    assert footprint(db, m) == before
    job = (await scheduler.GetJob(scheduler_pb2.GetJobRequest(job_id=standalone.id))).job
    assert job.run_id == ""
    assert job.state == common_pb2.JOB_STATE_READY


async def test_submit_into_run_with_a_key_the_run_already_has_is_refused(scheduler, db):
    """JobSpec.key is 'unique among the specs of one request and the jobs of the target run'."""
    m = _marker()
    run = await scheduler.CreateRun(_run(m, [_job(m, "a")]))
    before = footprint(db, m)
    err = await _refused(
        scheduler.SubmitJob(scheduler_pb2.SubmitJobRequest(run_id=run.run.id, job=_job(m, "a")))
    )
    assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS), (
        err.details()
    )
    assert footprint(db, m) == before
    dag = await scheduler.GetRunDag(scheduler_pb2.GetRunDagRequest(run_id=run.run.id))
    assert [j.key for j in dag.jobs] == [f"{m}-a"]


# ------------------------------------------------------------------ illegal transitions


async def test_cancel_succeeded_job_is_failed_precondition(scheduler, leases, db):
    m = _marker()
    job = await _succeeded_job(scheduler, leases, m)
    assert job.state == common_pb2.JOB_STATE_SUCCEEDED
    events = _event_count(db, "job_id", job.id)
    err = await _refused(scheduler.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    details = error_details(err)
    assert details["ErrorInfo"].reason == "ILLEGAL_TRANSITION"
    assert dict(details["ErrorInfo"].metadata) == {"current": "succeeded", "target": "canceled"}
    (violation,) = details["PreconditionFailure"].violations
    assert (violation.type, violation.subject) == ("JOB_STATE", f"jobs/{job.id}")
    assert "succeeded" in violation.description
    after = (await scheduler.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))).job
    assert after.state == common_pb2.JOB_STATE_SUCCEEDED
    assert after.updated_at == job.updated_at
    assert _event_count(db, "job_id", job.id) == events


async def test_retry_ready_job_is_failed_precondition(scheduler, db):
    m = _marker()
    job = (await scheduler.SubmitJob(scheduler_pb2.SubmitJobRequest(job=_job(m, "a")))).job
    assert job.state == common_pb2.JOB_STATE_READY
    err = await _refused(scheduler.RetryJob(scheduler_pb2.RetryJobRequest(job_id=job.id)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    details = error_details(err)
    assert details["ErrorInfo"].reason == "ILLEGAL_TRANSITION"
    assert details["ErrorInfo"].metadata["current"] == "ready"
    (violation,) = details["PreconditionFailure"].violations
    assert (violation.type, violation.subject) == ("JOB_STATE", f"jobs/{job.id}")
    after = (await scheduler.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))).job
    assert (after.state, after.reason, after.attempt) == (
        common_pb2.JOB_STATE_READY,
        "submitted",
        0,
    )
    assert _event_count(db, "job_id", job.id) == 1


async def test_cancel_run_twice_second_is_failed_precondition(scheduler, db):
    m = _marker()
    run = (await scheduler.CreateRun(_run(m, [_job(m, "a"), _job(m, "b", deps=("a",))]))).run
    first = await scheduler.CancelRun(scheduler_pb2.CancelRunRequest(run_id=run.id))
    assert first.run.state == common_pb2.RUN_STATE_CANCELED
    assert first.canceled_job_count == 2
    before = footprint(db, m)
    err = await _refused(scheduler.CancelRun(scheduler_pb2.CancelRunRequest(run_id=run.id)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    details = error_details(err)
    assert details["ErrorInfo"].reason == "RUN_ALREADY_FINISHED"
    (violation,) = details["PreconditionFailure"].violations
    assert (violation.type, violation.subject) == ("RUN_STATE", f"runs/{run.id}")
    assert "canceled" in violation.description
    assert footprint(db, m) == before
    again = (await scheduler.GetRun(scheduler_pb2.GetRunRequest(run_id=run.id))).run
    assert again.state == common_pb2.RUN_STATE_CANCELED
    assert dict(again.job_counts) == {"canceled": 2}


# ------------------------------------------------------------------ identity


def _source(marker: str) -> resources_pb2.Source:
    return resources_pb2.Source(
        name=marker, source_type="nvd", host="services.nvd.nist.gov", enabled=True
    )


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "TOKEN_MISSING"),
        ("Basic dXNlcjpwYXNz", "TOKEN_MALFORMED"),
        ("Bearer not-a-jwt", "TOKEN_MALFORMED"),
        ("wrong-secret", "TOKEN_INVALID"),
    ],
)
async def test_missing_or_bad_token_is_unauthenticated(channel, db, authorization, reason):
    from orchestrator_grpckit import mint_dev_token

    if authorization == "wrong-secret":
        token = mint_dev_token(
            "another-secret-0123456789abcdef0123", "tester", ["acme"], ["orch:read", "orch:operate"]
        )
        authorization = f"Bearer {token}"
    stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
    metadata = (("authorization", authorization),) if authorization else None
    m = _marker()
    err = await _refused(
        stub.CreateSource(scheduler_pb2.CreateSourceRequest(source=_source(m)), metadata=metadata)
    )
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err.details()
    assert error_details(err)["ErrorInfo"].reason == reason
    assert footprint(db, m) == {"jobs": 0, "runs": 0, "sources": 0, "events": 0}


async def test_read_only_token_cannot_create_source(reader, db):
    m = _marker()
    err = await _refused(reader.CreateSource(scheduler_pb2.CreateSourceRequest(source=_source(m))))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED, err.details()
    info = error_details(err)["ErrorInfo"]
    assert info.reason == "PERMISSION_DENIED"
    assert info.metadata["required_scope"] == "orch:operate"
    assert footprint(db, m) == {"jobs": 0, "runs": 0, "sources": 0, "events": 0}
    # the same token may read
    listed = await reader.ListSources(scheduler_pb2.ListSourcesRequest(source_type="nvd"))
    assert all(s.tenant == "acme" for s in listed.sources)


@pytest.mark.parametrize("method", ["CreateSource", "CreateRun", "SubmitJob"])
async def test_unregistered_tenant_is_not_found(channel, make_token, db, method):
    initech = Stub(channel, make_token("initech"))
    m = _marker()
    request = {
        "CreateSource": lambda: scheduler_pb2.CreateSourceRequest(source=_source(m)),
        "CreateRun": lambda: _run(m, [_job(m, "a")]),
        "SubmitJob": lambda: scheduler_pb2.SubmitJobRequest(job=_job(m, "a")),
    }[method]()
    err = await _refused(getattr(initech, method)(request))
    _assert_not_found(err, "tenant", "initech")
    assert footprint(db, m) == {"jobs": 0, "runs": 0, "sources": 0, "events": 0}


# ------------------------------------------------------------------ paging

LIST_CASES: list[tuple[str, Callable[..., object]]] = [
    ("ListJobs", lambda **kw: scheduler_pb2.ListJobsRequest(**kw)),
    ("ListRuns", lambda **kw: scheduler_pb2.ListRunsRequest(**kw)),
    ("ListSources", lambda **kw: scheduler_pb2.ListSourcesRequest(**kw)),
    (
        "ListJobEvents",
        lambda **kw: scheduler_pb2.ListJobEventsRequest(job_id=str(uuid.uuid4()), **kw),
    ),
]


@pytest.mark.parametrize(("method", "build"), LIST_CASES)
async def test_negative_page_size_is_invalid_argument(scheduler, method, build):
    err = await _refused(getattr(scheduler, method)(build(page_size=-1)))
    _assert_invalid(err, "page_size", "-1")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


GARBAGE_TOKENS = [
    "garbage!!",
    "%%%",
    _b64(b"\xff\xfe\x00not json"),
    _b64(b"[1, 2]"),
    _b64(b'{"a": "0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b"}'),  # no filter fingerprint
    _b64(b'{"a": "0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b", "f": "0000000000000000"}'),
]


@pytest.mark.parametrize("token", GARBAGE_TOKENS)
@pytest.mark.parametrize(("method", "build"), LIST_CASES)
async def test_garbage_page_token_is_invalid_argument(scheduler, method, build, token):
    err = await _refused(getattr(scheduler, method)(build(page_token=token)))
    _assert_invalid(err, "page_token")


async def test_page_token_reused_with_other_filters_is_invalid_argument(scheduler):
    m = _marker()
    await scheduler.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(jobs=[_job(m, str(i)) for i in range(3)])
    )
    first = await scheduler.ListJobs(
        scheduler_pb2.ListJobsRequest(job_type=f"{m}.work", page_size=1)
    )
    token = first.next_page_token
    assert len(first.jobs) == 1
    assert token
    # positive control: the same filters continue
    second = await scheduler.ListJobs(
        scheduler_pb2.ListJobsRequest(job_type=f"{m}.work", page_size=1, page_token=token)
    )
    assert len(second.jobs) == 1
    assert second.jobs[0].id > first.jobs[0].id
    other_filters = [
        scheduler_pb2.ListJobsRequest(job_type=f"{m}.other", page_size=1, page_token=token),
        scheduler_pb2.ListJobsRequest(
            job_type=f"{m}.work", page_token=token, states=[common_pb2.JOB_STATE_READY]
        ),
        scheduler_pb2.ListJobsRequest(page_token=token),
        scheduler_pb2.ListJobsRequest(
            job_type=f"{m}.work", run_id=str(uuid.uuid4()), page_token=token
        ),
    ]
    for request in other_filters:
        err = await _refused(scheduler.ListJobs(request))
        _assert_invalid(err, "page_token")
    # nor is a ListJobs token good for another list
    err = await _refused(scheduler.ListRuns(scheduler_pb2.ListRunsRequest(page_token=token)))
    _assert_invalid(err, "page_token")


# ------------------------------------------------------------------ UpdateSource masks


@pytest.mark.parametrize(
    ("paths", "field", "words"),
    [
        ([], "update_mask", ("name the fields",)),
        (["bogus"], "update_mask.paths[0]", ("'bogus'",)),
        (["enabled", "version"], "update_mask.paths[1]", ("'version'",)),
        (["id"], "update_mask.paths[0]", ("'id'",)),
        (["tenant"], "update_mask.paths[0]", ("'tenant'",)),
    ],
)
async def test_update_source_with_bad_mask_is_invalid_and_changes_nothing(
    scheduler, db, paths, field, words
):
    m = _marker()
    created = (
        await scheduler.CreateSource(scheduler_pb2.CreateSourceRequest(source=_source(m)))
    ).source
    before = footprint(db, m)
    change = resources_pb2.Source(id=created.id, name=f"{m}-renamed", enabled=False, version=0)
    err = await _refused(
        scheduler.UpdateSource(
            scheduler_pb2.UpdateSourceRequest(
                source=change, update_mask=field_mask_pb2.FieldMask(paths=paths)
            )
        )
    )
    _assert_invalid(err, field, *words)
    assert footprint(db, m) == before
    after = (await scheduler.GetSource(scheduler_pb2.GetSourceRequest(source_id=created.id))).source
    assert after == created


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda m: _job(m, "a", payload=_payload(note="a\x00b")), id="payload"),
        pytest.param(lambda m: _job(m, "a", correlation_id="c\x00"), id="text-field"),
        pytest.param(lambda m: _job(m, "a", payload=_payload(**{"k\x00": 1})), id="payload-key"),
    ],
)
async def test_a_nul_character_is_invalid_argument_and_writes_nothing(scheduler, db, build):
    # PostgreSQL text cannot hold NUL; it was a 500 (found by schemathesis on a REST filter)
    m = _marker()
    err = await _refused(scheduler.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=[build(m)])))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert "NUL" in err.details()
    assert footprint(db, m) == {"jobs": 0, "runs": 0, "sources": 0, "events": 0}


async def test_a_nul_character_in_a_filter_is_invalid_argument(scheduler):
    err = await _refused(scheduler.ListQuotas(scheduler_pb2.ListQuotasRequest(job_type="a\x00")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
