# ruff: noqa: F811  (the worker SDK tests' fixtures, imported below, are test parameters here)
"""Resuming a failed run (ResumeRun) over real gRPC, the real leases service, the Python worker
SDK and real PostgreSQL: a DAG run whose middle job dies on a broken upstream fails with its
descendants canceled as upstream_failed; once the upstream is fixed, a resume re-runs only
what did not succeed and the run ends succeeded. Counted in ``job.succeeded`` events, never
in seconds."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import grpc
import pytest

from orchestrator_grpckit import error_details
from orchestrator_pg import Database, Failure, LeaseLedger, TxContext
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2
from stella_orchestrator.worker import ParseError
from tests.integration.test_sdk_worker import (  # noqa: F401  (fixtures)
    adb,
    eventually,
    job_type,
    make_worker,
    running,
)

pytestmark = pytest.mark.integration

WAIT_S = 60.0
FIX = common_pb2.OperatorContext(
    reason="upstream window fixed (vendor re-published)", ticket="OPS-20"
)

# a -> b -> c -> d and a -> e -> d; f stands alone. b is the job on the broken upstream.
DAG = {"a": [], "b": ["a"], "c": ["b"], "d": ["c", "e"], "e": ["a"], "f": []}


async def _run_state(scheduler, run_id: str) -> int:
    return (await scheduler.GetRun(scheduler_pb2.GetRunRequest(run_id=run_id))).run.state


async def _jobs(adb, run_id: str) -> dict[str, dict[str, Any]]:
    cur = await adb.execute(
        "SELECT key, id, state, reason, attempt, max_attempts FROM orchestrator.jobs"
        " WHERE run_id = %s",
        (run_id,),
    )
    return {r["key"]: r for r in await cur.fetchall()}


async def _events(adb, run_id: str, *types: str) -> list[dict[str, Any]]:
    cur = await adb.execute(
        "SELECT e.type, j.key, e.reason, e.from_state, e.to_state FROM orchestrator.events e"
        " JOIN orchestrator.jobs j ON j.id = e.job_id"
        " WHERE e.run_id = %s AND e.type = ANY(%s) ORDER BY e.seq",
        (run_id, list(types)),
    )
    return list(await cur.fetchall())


def _refused(caught: pytest.ExceptionInfo[grpc.aio.AioRpcError], reason: str) -> None:
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION, caught.value.details()
    assert error_details(caught.value)["ErrorInfo"].reason == reason


async def _create_run(scheduler, job_type: str) -> str:
    specs = [
        resources_pb2.JobSpec(
            key=key,
            job_type=job_type,
            depends_on=parents,
            retry_policy=common_pb2.RetryPolicy(max_attempts=2),
        )
        for key, parents in DAG.items()
    ]
    for spec in specs:
        spec.payload.update({"key": spec.key})
    reply = await scheduler.CreateRun(scheduler_pb2.CreateRunRequest(name="resume", jobs=specs))
    return str(reply.run.id)


async def test_a_failed_run_resumed_after_the_fix_succeeds_running_each_success_once(
    scheduler, reader, adb, make_worker, job_type
) -> None:
    upstream_fixed = False
    calls: Counter[str] = Counter()
    worker = make_worker(concurrency=4)

    @worker.handler(job_type)
    async def ingest(job):
        calls[job.key] += 1
        if job.key == "b" and not upstream_fixed:
            raise ParseError("window 2026-12-04T10:00Z: truncated document")  # non-retryable
        return {"key": job.key}

    run_id = await _create_run(scheduler, job_type)
    async with running(worker):

        async def failed() -> bool:
            return await _run_state(scheduler, run_id) == common_pb2.RUN_STATE_FAILED

        await eventually(failed, WAIT_S)
        before = await _jobs(adb, run_id)
        assert {k: (r["state"], r["reason"]) for k, r in before.items()} == {
            "a": ("succeeded", "completed"),
            "b": ("dead", "non_retryable"),
            "c": ("canceled", "upstream_failed"),
            "d": ("canceled", "upstream_failed"),
            "e": ("succeeded", "completed"),
            "f": ("succeeded", "completed"),
        }

        # Refusals first: a reason is required, read-only callers may not, and a run that is
        # not failed (this one, once resumed) has nothing to resume.
        with pytest.raises(grpc.aio.AioRpcError) as no_reason:
            await scheduler.ResumeRun(scheduler_pb2.ResumeRunRequest(run_id=run_id))
        assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as read_only:
            await reader.ResumeRun(scheduler_pb2.ResumeRunRequest(run_id=run_id, operator=FIX))
        assert read_only.value.code() == grpc.StatusCode.PERMISSION_DENIED

        upstream_fixed = True
        reply = await scheduler.ResumeRun(
            scheduler_pb2.ResumeRunRequest(run_id=run_id, operator=FIX)
        )
        assert (reply.retried_job_count, reply.revived_job_count) == (1, 2)
        assert reply.run.state == common_pb2.RUN_STATE_RUNNING

        async def succeeded() -> bool:
            return await _run_state(scheduler, run_id) == common_pb2.RUN_STATE_SUCCEEDED

        await eventually(succeeded, WAIT_S)

    # Every job succeeded exactly once: the three that had succeeded were not run again.
    succeeded_events = Counter(e["key"] for e in await _events(adb, run_id, "job.succeeded"))
    assert succeeded_events == dict.fromkeys(DAG, 1)
    assert calls == {"a": 1, "b": 2, "c": 1, "d": 1, "e": 1, "f": 1}
    after = await _jobs(adb, run_id)
    # b kept its attempt count (it keys the attempt's events) and got a fresh budget of 2.
    assert (after["b"]["attempt"], after["b"]["max_attempts"]) == (2, 3)

    # The resume's transitions, each a legal event with the resume's reason.
    resumed = await _events(adb, run_id, "job.retried", "job.revived")
    assert sorted((e["type"], e["key"], e["from_state"], e["to_state"]) for e in resumed) == [
        ("job.retried", "b", "dead", "ready"),
        ("job.revived", "c", "canceled", "pending"),
        ("job.revived", "d", "canceled", "pending"),
    ]
    assert {e["reason"] for e in resumed} == {"run_resumed"}

    # Audited: who and why; the dead-letter entry of b is marked replayed.
    cur = await adb.execute(
        "SELECT actor_subject, actor_scopes, reason, ticket FROM orchestrator.audit_entries"
        " WHERE action = 'run.resume' AND target = %s",
        (f"runs/{run_id}",),
    )
    assert await cur.fetchall() == [
        {
            "actor_subject": "tester",
            "actor_scopes": ["orch:operate", "orch:read"],
            "reason": FIX.reason,
            "ticket": "OPS-20",
        }
    ]
    cur = await adb.execute(
        "SELECT status, resolved_by FROM orchestrator.dead_letter WHERE job_id = %s",
        (before["b"]["id"],),
    )
    assert await cur.fetchall() == [{"status": "replayed", "resolved_by": "tester"}]

    # A succeeded run is not failed: refused, and nothing changes.
    with pytest.raises(grpc.aio.AioRpcError) as not_failed:
        await scheduler.ResumeRun(scheduler_pb2.ResumeRunRequest(run_id=run_id, operator=FIX))
    _refused(not_failed, "RUN_NOT_FAILED")
    assert await _run_state(scheduler, run_id) == common_pb2.RUN_STATE_SUCCEEDED


async def test_concurrent_resumes_resume_once(scheduler, adb, database_url, job_type) -> None:
    """Two operators resume the same failed run at once: one resume wins, the other is
    refused (the run is running by then); every transition is written once."""
    specs = [
        resources_pb2.JobSpec(key="a", job_type=job_type),
        resources_pb2.JobSpec(key="b", job_type=job_type, depends_on=["a"]),
    ]
    run_id = str(
        (await scheduler.CreateRun(scheduler_pb2.CreateRunRequest(name="r", jobs=specs))).run.id
    )
    async with Database(database_url) as database:
        ledger = LeaseLedger(database)
        ctx = TxContext(tenant="acme", actor_subject="w")
        (row,) = await ledger.job_claim_batch(
            ctx, worker_id="w", job_types=[job_type], limit=1, tenants=["acme"]
        )
        failure = Failure(row["id"], row["lease_id"], "parse_error", "broken", retryable=False)
        assert all(o.ok for o in await ledger.job_fail_many(ctx, [failure], tenants=["acme"]))
    assert await _run_state(scheduler, run_id) == common_pb2.RUN_STATE_FAILED

    outcomes = await asyncio.gather(
        *(
            scheduler.ResumeRun(scheduler_pb2.ResumeRunRequest(run_id=run_id, operator=FIX))
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, scheduler_pb2.ResumeRunResponse)]
    lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(won) == 1, outcomes
    assert len(lost) == 1, outcomes
    assert lost[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(lost[0])["ErrorInfo"].reason == "RUN_NOT_FAILED"
    assert (won[0].retried_job_count, won[0].revived_job_count) == (1, 1)
    resumed = await _events(adb, run_id, "job.retried", "job.revived")
    assert sorted((e["type"], e["key"]) for e in resumed) == [
        ("job.retried", "a"),
        ("job.revived", "b"),
    ]
    cur = await adb.execute(
        "SELECT count(*) AS n FROM orchestrator.audit_entries WHERE action = 'run.resume'"
        " AND target = %s",
        (f"runs/{run_id}",),
    )
    assert (await cur.fetchone())["n"] == 1
