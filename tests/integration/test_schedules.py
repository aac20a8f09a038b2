"""Schedules over real gRPC and PostgreSQL: CRUD with validation, and firing by two
scheduler replicas across a leader failover (injected clock): exactly one run per fire time."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from orchestrator_core import FrozenClock
from orchestrator_grpckit import error_details
from orchestrator_pg import Database, Stores
from orchestrator_scheduler._firing import ScheduleFirer, plan, run_identity
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2

pytestmark = pytest.mark.integration

OPERATOR = common_pb2.OperatorContext(reason="nightly NVD pull", ticket="OPS-7")


def _schedule(name: str, cron: str = "* * * * *", **kwargs) -> resources_pb2.Schedule:
    template = resources_pb2.RunTemplate(
        name="nvd {fire_time}",
        jobs=[
            resources_pb2.JobSpec(key="fetch", job_type="advisory.fetch"),
            resources_pb2.JobSpec(key="parse", job_type="advisory.parse", depends_on=["fetch"]),
        ],
    )
    return resources_pb2.Schedule(
        name=name, cron=cron, run_template=template, enabled=True, **kwargs
    )


async def test_schedule_crud_and_validation(scheduler, reader) -> None:
    name = f"nvd-{uuid.uuid4().hex[:8]}"
    created = (
        await scheduler.CreateSchedule(
            scheduler_pb2.CreateScheduleRequest(
                schedule=_schedule(name, "@hourly"), operator=OPERATOR
            )
        )
    ).schedule
    assert created.cron == "@hourly"
    assert created.catch_up == resources_pb2.CATCH_UP_POLICY_ONE  # the default
    assert created.overlap == resources_pb2.OVERLAP_POLICY_SKIP
    next_fire = created.next_fire_at.ToDatetime(tzinfo=UTC)
    assert next_fire > datetime.now(UTC)
    assert (next_fire.minute, next_fire.second) == (0, 0)
    assert [j.key for j in created.run_template.jobs] == ["fetch", "parse"]

    got = await reader.GetSchedule(scheduler_pb2.GetScheduleRequest(schedule_id=created.id))
    assert got.schedule == created
    listed = await reader.ListSchedules(scheduler_pb2.ListSchedulesRequest(page_size=1000))
    assert created.id in {s.id for s in listed.schedules}

    change = resources_pb2.Schedule(
        id=created.id,
        cron="*/5 * * * *",
        catch_up=resources_pb2.CATCH_UP_POLICY_ALL,
        catch_up_window=duration_pb2.Duration(seconds=3600),
    )
    updated = (
        await scheduler.UpdateSchedule(
            scheduler_pb2.UpdateScheduleRequest(
                schedule=change,
                update_mask=field_mask_pb2.FieldMask(paths=["cron", "catch_up", "catch_up_window"]),
                operator=OPERATOR,
            )
        )
    ).schedule
    assert updated.cron == "*/5 * * * *"
    assert updated.next_fire_at.ToDatetime(tzinfo=UTC).minute % 5 == 0
    assert updated.catch_up == resources_pb2.CATCH_UP_POLICY_ALL
    assert updated.catch_up_window.seconds == 3600
    assert updated.name == name  # not in the mask

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await scheduler.CreateSchedule(
            scheduler_pb2.CreateScheduleRequest(
                schedule=_schedule(f"bad-{uuid.uuid4().hex[:6]}", "* * * *"), operator=OPERATOR
            )
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in error_details(bad.value)["BadRequest"].field_violations}
    assert fields == {"schedule.cron"}

    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await reader.DeleteSchedule(
            scheduler_pb2.DeleteScheduleRequest(schedule_id=created.id, operator=OPERATOR)
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await scheduler.DeleteSchedule(
        scheduler_pb2.DeleteScheduleRequest(schedule_id=created.id, operator=OPERATOR)
    )
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await reader.GetSchedule(scheduler_pb2.GetScheduleRequest(schedule_id=created.id))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


class _ReplicaDied(Exception):
    pass


class _CrashingFirer(ScheduleFirer):
    """A replica that dies after creating its runs but before advancing the schedule (the
    worst moment for a failover); the crash aborts its pass's transaction."""

    crash = False

    async def _fire(self, conn, schedule, now) -> int:
        if not self.crash:
            return await super()._fire(conn, schedule, now)
        open_run = await self.stores.schedules.schedule_has_open_run(conn, schedule.id)
        for fire_at in plan(schedule, now, open_run=open_run).fires:
            await self._create_run(schedule, fire_at)
        raise _ReplicaDied("replica died before advancing the schedule")


async def test_every_minute_schedule_across_a_leader_failover(scheduler, database_url, db) -> None:
    start = datetime(2026, 2, 1, 9, 0, 30, tzinfo=UTC)
    clock = FrozenClock(start)
    name = f"minutely-{uuid.uuid4().hex[:8]}"
    created = (
        await scheduler.CreateSchedule(
            scheduler_pb2.CreateScheduleRequest(
                schedule=_schedule(
                    name,
                    catch_up=resources_pb2.CATCH_UP_POLICY_ALL,
                    overlap=resources_pb2.OVERLAP_POLICY_ALLOW,  # runs stay pending here
                ),
                operator=OPERATOR,
            )
        )
    ).schedule
    schedule_id = uuid.UUID(created.id)
    first_fire = datetime(2026, 2, 1, 9, 1, tzinfo=UTC)
    db.execute(  # created against the wall clock; start it at the injected one
        "UPDATE orchestrator.schedules SET next_fire_at = %s WHERE id = %s",
        (first_fire, created.id),
    )
    lock_key = random.randrange(1, 2**62)  # this test's own leader lock
    async with (
        Database(database_url, clock=clock) as one,
        Database(database_url, clock=clock) as two,
    ):
        a = _CrashingFirer(Stores.over(one), database_url, clock=clock, lock_key=lock_key)
        b = ScheduleFirer(Stores.over(two), database_url, clock=clock, lock_key=lock_key)
        assert await a.leadership.ensure()  # A leads from the start and keeps leading
        for minute in range(1, 21):
            clock.set(start + timedelta(minutes=minute))
            if minute < 8:  # both replicas run; one leads, the other stands by
                outcomes = await asyncio.gather(a.run_once(), b.run_once())
                # one run per minute in all: whoever led created it (None: stood by)
                assert sorted(o or 0 for o in outcomes) == [0, 1]
            elif minute == 8:  # A leads and dies after creating 09:08's run, before advancing
                a.crash = True
                with pytest.raises(_ReplicaDied):
                    await a.run_once()
                await a.leadership.release()  # its process ends: PostgreSQL frees the lock
            else:  # A is gone: B takes over, re-fires 09:08 (the same run) and goes on
                assert await b.run_once() is not None
        await b.leadership.release()
    rows = db.execute(
        "SELECT id, idempotency_key, created_at FROM orchestrator.runs WHERE schedule_id = %s",
        (created.id,),
    ).fetchall()
    fire_times = [first_fire + timedelta(minutes=i) for i in range(20)]
    expected = {run_identity(schedule_id, f) for f in fire_times}
    assert {(r[0], r[1]) for r in rows} == expected  # one run per fire time
    assert len(rows) == 20  # and no more
    (jobs,) = db.execute(
        "SELECT count(*) FROM orchestrator.jobs j JOIN orchestrator.runs r ON r.id = j.run_id"
        " WHERE r.schedule_id = %s",
        (created.id,),
    ).fetchone()
    assert jobs == 40
    (next_fire,) = db.execute(
        "SELECT next_fire_at FROM orchestrator.schedules WHERE id = %s", (created.id,)
    ).fetchone()
    assert next_fire == start + timedelta(minutes=21) - timedelta(seconds=30)


async def test_watermark_advances_over_contiguous_succeeded_windows_only(
    scheduler, reader, database_url, db
) -> None:
    from orchestrator_pg import Completion, LeaseLedger, TxContext

    source = (
        await scheduler.CreateSource(
            scheduler_pb2.CreateSourceRequest(
                source=resources_pb2.Source(
                    name=f"osv-{uuid.uuid4().hex[:8]}",
                    source_type="osv",
                    host="api.osv.dev",
                    enabled=True,
                )
            )
        )
    ).source
    job_type = f"wm{uuid.uuid4().hex[:10]}.ingest"
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    hour = timedelta(hours=1)
    specs = []
    for i in range(4):
        window = common_pb2.TimeWindow()
        window.start.FromDatetime(t0 + i * hour)
        window.end.FromDatetime(t0 + (i + 1) * hour)
        specs.append(
            resources_pb2.JobSpec(job_type=job_type, source_id=source.id, event_time_window=window)
        )
    jobs = (await scheduler.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=specs))).jobs
    by_window = {j.event_time_window.start.ToDatetime(tzinfo=UTC): j.id for j in jobs}

    async def mark() -> datetime | None:
        reply = await reader.ListWatermarks(
            scheduler_pb2.ListWatermarksRequest(source_id=source.id, job_type=job_type)
        )
        if not reply.watermarks:
            return None
        (wm,) = reply.watermarks
        return wm.high_watermark.ToDatetime(tzinfo=UTC)

    async with Database(database_url) as database:
        leases = LeaseLedger(database)
        ctx = TxContext(tenant="acme", actor_subject="wm-worker")
        leased = await leases.job_claim_batch(
            ctx, worker_id="wm-worker", job_types=[job_type], limit=10, tenants=["acme"]
        )
        lease_of = {r["id"]: r["lease_id"] for r in leased}

        async def succeed(i: int) -> None:
            job_id = uuid.UUID(by_window[t0 + i * hour])
            (outcome,) = await leases.job_complete_many(
                ctx, [Completion(job_id, lease_of[job_id])], tenants=["acme"]
            )
            assert outcome.ok

        await succeed(3)  # a later window first: the watermark stays at the first window
        assert await mark() == t0
        await succeed(1)
        assert await mark() == t0
        await succeed(0)  # the gap closes: up to the end of window 1
        assert await mark() == t0 + 2 * hour
        await succeed(2)  # and on over the already succeeded window 3
        assert await mark() == t0 + 4 * hour
    moves = db.execute(
        "SELECT data->>'from', data->>'to' FROM orchestrator.events"
        " WHERE type = 'watermark.advanced' AND source_id = %s AND job_type = %s ORDER BY seq",
        (source.id, job_type),
    ).fetchall()
    assert [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in moves] == [
        (t0, t0 + 2 * hour),
        (t0 + 2 * hour, t0 + 4 * hour),
    ]
