"""Incidents written by the system, against real PostgreSQL and two scheduler replicas.

Failures go through the real hot path (LeaseLedger claim + fail, which writes job.dead and
job.retrying events by trigger); two scheduler services over one database both run the
incident loop (one leads); the injected clock drives windows and quiet periods. Everything
is asserted through SchedulerService over gRPC, plus the ledger's events and audit entries.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg
import pytest

from orchestrator_core import FrozenClock
from orchestrator_pg import Database, Failure, LeaderLoop, LeaseLedger, TxContext
from stella.orchestrator.v1 import (
    common_pb2,
    operations_pb2,
    resources_pb2,
    scheduler_pb2,
)
from tests.conftest import Stub, eventually, migrated_database, service_config

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
WAIT_S = 90.0
OPERATOR = common_pb2.OperatorContext(reason="seen, upstream is down", ticket="OPS-18")


@pytest.fixture(scope="module")
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture(scope="module")
def incidents_db(admin_url: str) -> Any:
    with migrated_database(admin_url, "orch_inc", ("acme", "globex")) as url:
        yield url


@pytest.fixture(scope="module")
async def replicas(incidents_db: str, clock: FrozenClock) -> AsyncIterator[list[str]]:
    """Two scheduler replicas over one database, each running the incident loop."""
    from orchestrator_scheduler import build_service

    targets = []
    async with AsyncExitStack() as stack:
        for _ in range(2):
            service = await stack.enter_async_context(
                build_service(
                    service_config("scheduler", incidents_db), clock=clock, schedule_firing=False
                )
            )
            await service.start()
            stack.push_async_callback(service.stop)
            targets.append(f"127.0.0.1:{service.port}")
        yield targets


@pytest.fixture
async def stubs(replicas: list[str], make_token) -> AsyncIterator[dict[str, Stub]]:
    async with (
        grpc.aio.insecure_channel(replicas[0]) as one,
        grpc.aio.insecure_channel(replicas[1]) as two,
    ):
        yield {
            "acme": Stub(one, make_token("acme", subject="alice")),
            "acme2": Stub(two, make_token("acme", subject="bob")),
            "globex": Stub(two, make_token("globex")),
            "reader": Stub(one, make_token("acme", ("orch:read",))),
        }


@pytest.fixture
async def ledger(incidents_db: str, clock: FrozenClock) -> AsyncIterator[LeaseLedger]:
    async with Database(incidents_db, clock=clock) as db:
        yield LeaseLedger(db)


@pytest.fixture
def db(incidents_db: str) -> Any:
    with psycopg.connect(incidents_db, autocommit=True) as conn:
        yield conn


async def _fail(
    stub: Stub,
    ledger: LeaseLedger,
    clock: FrozenClock,
    tenant: str,
    job_type: str,
    n: int,
    *,
    error_class: str = "http_5xx",
    source_id: str = "",
) -> list[str]:
    """``n`` jobs that each fail once for good (non-retryable: one job.dead event each)."""
    reply = await stub.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[resources_pb2.JobSpec(job_type=job_type, source_id=source_id) for _ in range(n)]
        )
    )
    ids = [j.id for j in reply.jobs]
    ctx = TxContext(tenant=tenant, actor_subject="worker", now=clock.now())
    leased = await ledger.job_claim_batch(
        ctx, worker_id="w", job_types=[job_type], limit=n, tenants=[tenant]
    )
    assert len(leased) == n
    outcomes = await ledger.job_fail_many(
        ctx,
        [
            Failure(row["id"], row["lease_id"], error_class, "upstream 500", retryable=False)
            for row in leased
        ],
        tenants=[tenant],
    )
    assert all(o.ok for o in outcomes)
    return ids


async def _settled(db: Any, clock: FrozenClock) -> None:
    """Waits for an incident pass that ran at the clock's now and read every event written
    so far (the pass writes its cursor and its time)."""
    (head,) = db.execute("SELECT coalesce(max(seq), 0) FROM orchestrator.events").fetchone()
    now = clock.now()

    async def passed() -> bool:
        row = db.execute("SELECT seq, updated_at FROM orchestrator.incident_cursor").fetchone()
        return row is not None and row[0] >= head and row[1] >= now

    await eventually(passed, f"an incident pass at {now} past seq {head}")


async def _incidents(stub: Stub, job_type: str) -> list[resources_pb2.Incident]:
    reply = await stub.ListIncidents(operations_pb2.ListIncidentsRequest(page_size=500))
    return [i for i in reply.incidents if i.job_type == job_type]


def _job_type() -> str:
    return f"i{uuid.uuid4().hex[:12]}.fetch"


async def test_threshold_opens_one_incident_that_grows_then_resolves_when_quiet(
    stubs, ledger, clock, db
) -> None:
    acme = stubs["acme"]
    job_type = _job_type()
    t0 = clock.now()
    await _settled(db, clock)  # the loop's cursor exists before the failures
    first = await _fail(acme, ledger, clock, "acme", job_type, 5)
    opened = await eventually(lambda: _incidents(acme, job_type), "the incident to open")
    assert len(opened) == 1  # one per cluster, though two replicas run the loop
    (incident,) = opened
    assert incident.state == resources_pb2.INCIDENT_STATE_OPEN
    assert incident.error_class == common_pb2.ERROR_CLASS_HTTP_5XX
    assert incident.failure_count == 5
    assert sorted(incident.sample_job_ids) == sorted(first)
    assert incident.reason_code == f"{job_type}.http_5xx.burst"
    assert incident.first_seen_at.ToDatetime(UTC) == t0

    # it grows: counts and samples (bounded to 10, newest first)
    clock.set(t0 + timedelta(minutes=2))
    more = await _fail(acme, ledger, clock, "acme", job_type, 7)
    await _settled(db, clock)
    (grown,) = await _incidents(stubs["acme2"], job_type)
    assert grown.id == incident.id
    assert grown.failure_count == 12
    assert len(grown.sample_job_ids) == 10
    assert set(more) <= set(grown.sample_job_ids)
    assert grown.last_seen_at.ToDatetime(UTC) == clock.now()

    # 9 quiet minutes: still open; 10: resolved at last failure + 10 min
    clock.set(t0 + timedelta(minutes=11))
    await _settled(db, clock)
    got = await acme.GetIncident(operations_pb2.GetIncidentRequest(incident_id=incident.id))
    assert got.incident.state == resources_pb2.INCIDENT_STATE_OPEN
    clock.set(t0 + timedelta(minutes=12))

    async def resolved() -> Any:
        reply = await acme.GetIncident(operations_pb2.GetIncidentRequest(incident_id=incident.id))
        return reply if reply.incident.state == resources_pb2.INCIDENT_STATE_RESOLVED else None

    done = await eventually(resolved, "the quiet period to resolve the incident")
    assert done.incident.resolved_at.ToDatetime(UTC) == t0 + timedelta(minutes=12)
    assert [e.type for e in done.timeline] == [
        "incident.opened",
        "incident.updated",  # passed 8
        "incident.resolved",
    ]
    assert [e.failure_count for e in done.timeline] == [5, 12, 12]
    # the outbox carries them like every event, once each
    (n,) = db.execute(
        "SELECT count(*) FROM orchestrator.events WHERE data->>'incident_id' = %s",
        (incident.id,),
    ).fetchone()
    assert n == 3

    # a new burst after resolution opens a new incident for the same cluster
    await _fail(acme, ledger, clock, "acme", job_type, 5)
    await _settled(db, clock)
    states = sorted(i.state for i in await _incidents(acme, job_type))
    assert states == [resources_pb2.INCIDENT_STATE_OPEN, resources_pb2.INCIDENT_STATE_RESOLVED]


async def test_below_threshold_or_spread_beyond_the_window_opens_nothing(
    stubs, ledger, clock, db
) -> None:
    acme = stubs["acme"]
    job_type = _job_type()
    await _settled(db, clock)
    await _fail(acme, ledger, clock, "acme", job_type, 4)
    clock.set(clock.now() + timedelta(minutes=6))  # the window (5 min) slides past them
    await _fail(acme, ledger, clock, "acme", job_type, 4)
    # another class and a 429 (throttling, not a failure) are clusters/records of their own
    await _fail(acme, ledger, clock, "acme", job_type, 1, error_class="timeout")
    await _fail(acme, ledger, clock, "acme", job_type, 6, error_class="http_429")
    await _settled(db, clock)
    assert await _incidents(acme, job_type) == []
    # the fifth failure within the window opens it, with the 4 recent ones counted
    await _fail(acme, ledger, clock, "acme", job_type, 1)
    await _settled(db, clock)
    (incident,) = await _incidents(acme, job_type)
    assert incident.failure_count == 5


async def test_acknowledge_records_who_and_why_audited_and_tenants_stay_apart(
    stubs, ledger, clock, db
) -> None:
    acme, globex = stubs["acme"], stubs["globex"]
    job_type = _job_type()
    await _settled(db, clock)
    await _fail(acme, ledger, clock, "acme", job_type, 5)
    await _fail(globex, ledger, clock, "globex", job_type, 5)
    await _settled(db, clock)
    (mine,) = await _incidents(acme, job_type)
    (theirs,) = await _incidents(globex, job_type)
    assert mine.id != theirs.id
    assert theirs.tenant == "globex"

    # another tenant can neither read nor acknowledge it; a reader may not acknowledge
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await globex.GetIncident(operations_pb2.GetIncidentRequest(incident_id=mine.id))
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await globex.AcknowledgeIncident(
            operations_pb2.AcknowledgeIncidentRequest(incident_id=mine.id, operator=OPERATOR)
        )
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stubs["reader"].AcknowledgeIncident(
            operations_pb2.AcknowledgeIncidentRequest(incident_id=mine.id, operator=OPERATOR)
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await acme.AcknowledgeIncident(
            operations_pb2.AcknowledgeIncidentRequest(incident_id=mine.id)
        )
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    acked = (
        await acme.AcknowledgeIncident(
            operations_pb2.AcknowledgeIncidentRequest(incident_id=mine.id, operator=OPERATOR)
        )
    ).incident
    assert acked.acknowledged_by == "alice"
    assert acked.acknowledge_reason == OPERATOR.reason
    assert acked.acknowledged_at.ToDatetime(UTC) == clock.now()
    assert acked.state == resources_pb2.INCIDENT_STATE_OPEN  # seen, not over
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await stubs["acme2"].AcknowledgeIncident(
            operations_pb2.AcknowledgeIncidentRequest(incident_id=mine.id, operator=OPERATOR)
        )
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    audit = db.execute(
        "SELECT actor_subject, action, reason, ticket FROM orchestrator.audit_entries"
        " WHERE tenant = 'acme' AND target = %s",
        (f"incidents/{mine.id}",),
    ).fetchall()
    assert audit == [("alice", "incident.acknowledge", OPERATOR.reason, "OPS-18")]
    timeline = (
        await acme.GetIncident(operations_pb2.GetIncidentRequest(incident_id=mine.id))
    ).timeline
    assert [(e.type, e.actor, e.reason) for e in timeline] == [
        ("incident.opened", "scheduler", ""),
        ("incident.acknowledged", "alice", OPERATOR.reason),
    ]
    # globex's incident is untouched
    (still,) = await _incidents(globex, job_type)
    assert still.acknowledged_by == ""
    assert not still.HasField("acknowledged_at")


async def test_a_tenant_policy_overrides_the_threshold(stubs, ledger, clock, db, incidents_db):
    from stella_orchestrator.cli import main

    acme = stubs["acme"]
    job_type = _job_type()
    argv = ["orchestrator", "tenants", "incident-policy", "globex", "--threshold", "2"]
    assert await asyncio.to_thread(main, [*argv, "--database-url", incidents_db]) == 0
    assert db.execute(
        "SELECT failure_threshold, window_s FROM orchestrator.incident_policies"
    ).fetchall() == [(2, None)]
    await _settled(db, clock)
    await _fail(stubs["globex"], ledger, clock, "globex", job_type, 2)
    await _fail(acme, ledger, clock, "acme", job_type, 2)
    await _settled(db, clock)
    assert len(await _incidents(stubs["globex"], job_type)) == 1
    assert await _incidents(acme, job_type) == []
    db.execute("DELETE FROM orchestrator.incident_policies")


async def test_one_replica_leads_the_incident_loop(replicas, incidents_db) -> None:
    from tests.migration.test_leadership import holders

    assert len(holders(incidents_db, LeaderLoop.INCIDENTS)) == 1


async def test_passes_racing_without_leadership_count_each_failure_once(
    stubs, ledger, clock, db, incidents_db
) -> None:
    """Two watchers that both believe they lead (a deposed leader still mid-pass) run their
    passes at the same moments, beside the replicas' loops: the cursor's row lock serialises
    them, so one incident holds every failure exactly once."""
    from orchestrator_pg import EventHorizon, IncidentStore
    from orchestrator_scheduler._incidents import IncidentWatcher

    acme = stubs["acme"]
    job_type = _job_type()
    horizon = EventHorizon(incidents_db)
    tracking = asyncio.create_task(horizon.run())
    try:
        await asyncio.wait_for(horizon.ready.wait(), WAIT_S)
        async with (
            Database(incidents_db, clock=clock) as one,
            Database(incidents_db, clock=clock) as two,
        ):
            watchers = [
                IncidentWatcher(IncidentStore(d), horizon, incidents_db, clock=clock, lock_key=k)
                for d, k in ((one, 11), (two, 12))
            ]
            for _ in range(6):
                await _fail(acme, ledger, clock, "acme", job_type, 3)
                await horizon.wait_beyond(horizon.seq, 1.0)
                await asyncio.gather(*(w.run_pass() for w in watchers))
            for w in watchers:
                w._withdraw()
    finally:
        tracking.cancel()
        await asyncio.gather(tracking, return_exceptions=True)
    await _settled(db, clock)
    (incident,) = await _incidents(acme, job_type)
    assert incident.failure_count == 18
    (windows,) = db.execute(
        "SELECT count(*) FROM orchestrator.incident_windows WHERE job_type = %s", (job_type,)
    ).fetchone()
    assert windows == 0


async def test_open_incidents_gauge_counts_what_is_open(incidents_db, clock, db) -> None:
    """The gauge of a watcher that ran a pass (a third loop beside the replicas': the cursor
    lock keeps them apart) equals the open incidents by tenant and error class."""
    from orchestrator_pg import EventHorizon, IncidentStore
    from orchestrator_scheduler._incidents import _COLLECTOR, IncidentWatcher

    horizon = EventHorizon(incidents_db)
    tracking = asyncio.create_task(horizon.run())
    try:
        await asyncio.wait_for(horizon.ready.wait(), WAIT_S)
        async with Database(incidents_db, clock=clock) as database:
            watcher = IncidentWatcher(
                IncidentStore(database), horizon, incidents_db, clock=clock, lock_key=1
            )
            await watcher.run_pass()
            rows = db.execute(
                "SELECT tenant, error_class, count(*) FROM orchestrator.incidents"
                " WHERE state = 'open' GROUP BY 1, 2"
            ).fetchall()
            published = _COLLECTOR.published[id(watcher)]
            assert published == {(t, c): n for t, c, n in rows}
            assert published  # the tests above left open incidents
            # once every cluster stayed quiet, nothing is open and no series is left
            clock.set(clock.now() + timedelta(hours=1))
            await watcher.run_pass()
            assert _COLLECTOR.published[id(watcher)] == {}
            watcher._withdraw()
    finally:
        tracking.cancel()
        await asyncio.gather(tracking, return_exceptions=True)
