"""Blackouts: per source and per tenant over gRPC, and the recurrence arithmetic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest

from orchestrator_ratelimit import Weekly, Window, active_until, blackout_until
from stella.orchestrator.v1 import ratelimit_pb2
from tests.integration.ratelimit._support import OPERATOR, Client, _acquire, _dur, _host, _ts

pytestmark = pytest.mark.integration


def _source(db: psycopg.Connection, host: str) -> str:
    source_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO orchestrator.sources (id, tenant, name, source_type, host, created_at,"
        " updated_at) VALUES (%s, 'acme', %s, 'test', %s, now(), now())",
        (source_id, f"src-{source_id[:8]}", host),
    )
    return source_id


async def test_blackout_of_a_source_denies_until_its_end(
    rl: Client, db: psycopg.Connection
) -> None:
    host = _host("blk")
    source_id = _source(db, host)
    now = datetime.now(UTC).replace(microsecond=0)
    end = now + timedelta(hours=1)
    created = await rl.SetBlackout(
        ratelimit_pb2.SetBlackoutRequest(
            blackout=ratelimit_pb2.Blackout(
                source_id=source_id,
                start=_ts(now - timedelta(hours=1)),
                end=_ts(end),
                reason="upstream maintenance",
            ),
            operator=OPERATOR,
        )
    )
    blackout = created.blackout
    assert blackout.id
    assert blackout.tenant == "acme"
    assert blackout.created_by == "tester"

    denied = await rl.Acquire(_acquire(host, source_id=source_id))
    grant = denied.grants[0]
    assert not grant.granted
    assert grant.deny_reason == "blackout"
    assert grant.available_at.ToDatetime(tzinfo=UTC) == end

    other = await rl.Acquire(_acquire(host))  # no source: only tenant-wide blackouts apply
    assert other.grants[0].granted

    listed = await rl.ListBlackouts(ratelimit_pb2.ListBlackoutsRequest(source_id=source_id))
    assert blackout.id in [b.id for b in listed.blackouts]

    await rl.DeleteBlackout(
        ratelimit_pb2.DeleteBlackoutRequest(blackout_id=blackout.id, operator=OPERATOR)
    )
    granted = await rl.Acquire(_acquire(host, source_id=source_id))
    assert granted.grants[0].granted

    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await rl.DeleteBlackout(
            ratelimit_pb2.DeleteBlackoutRequest(blackout_id=blackout.id, operator=OPERATOR)
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_weekly_tenant_blackout_active_and_inactive(rl: Client) -> None:
    host = _host("wk")
    start = datetime(2031, 1, 1, tzinfo=UTC)
    created = await rl.SetBlackout(
        ratelimit_pb2.SetBlackoutRequest(
            blackout=ratelimit_pb2.Blackout(
                start=_ts(start),
                recurrence=ratelimit_pb2.BlackoutRecurrence(
                    weekly=ratelimit_pb2.WeeklyRecurrence(
                        days=[ratelimit_pb2.WEEKDAY_MONDAY],
                        start_minute_utc=120,
                        duration=_dur(2 * 3600),
                    )
                ),
            ),
            operator=OPERATOR,
        )
    )
    try:
        assert created.blackout.recurrence.weekly.start_minute_utc == 120
        monday = datetime(2031, 1, 6, tzinfo=UTC)  # a Monday
        inside = await rl.Acquire(_acquire(host, now=monday + timedelta(hours=3)))
        assert inside.grants[0].deny_reason == "blackout"
        assert inside.grants[0].available_at.ToDatetime(tzinfo=UTC) == monday + timedelta(hours=4)
        outside = await rl.Acquire(_acquire(host, now=monday + timedelta(hours=5)))
        assert outside.grants[0].granted
    finally:
        await rl.DeleteBlackout(
            ratelimit_pb2.DeleteBlackoutRequest(blackout_id=created.blackout.id, operator=OPERATOR)
        )


async def test_blackout_validation(rl: Client) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await rl.SetBlackout(
            ratelimit_pb2.SetBlackoutRequest(
                blackout=ratelimit_pb2.Blackout(start=_ts(datetime.now(UTC))),
                operator=OPERATOR,
            )
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_weekly_recurrence_crossing_midnight() -> None:
    weekly = Weekly(frozenset({7}), 23 * 60, 2 * 3600)  # Sunday 23:00 for 2 h
    window = Window(datetime(2030, 1, 1, tzinfo=UTC), None, weekly)
    sunday = datetime(2030, 1, 6, tzinfo=UTC)
    assert sunday.isoweekday() == 7
    assert active_until(window, sunday + timedelta(hours=22, minutes=59)) is None
    assert active_until(window, sunday + timedelta(hours=23)) == sunday + timedelta(hours=25)
    assert active_until(window, sunday + timedelta(hours=24, minutes=30)) == sunday + timedelta(
        hours=25
    )
    assert active_until(window, sunday + timedelta(hours=25)) is None
    assert active_until(window, sunday + timedelta(days=1, hours=23)) is None  # Monday


def test_weekly_recurrence_respects_start_end_and_clips() -> None:
    weekly = Weekly(frozenset({1, 3}), 60, 3600)  # Mon and Wed 01:00-02:00
    monday = datetime(2030, 1, 7, tzinfo=UTC)
    window = Window(monday, monday + timedelta(days=2, hours=1, minutes=30), weekly)
    assert active_until(window, monday + timedelta(hours=1, minutes=5)) == monday + timedelta(
        hours=2
    )
    wednesday = monday + timedelta(days=2)
    assert active_until(window, wednesday + timedelta(hours=1, minutes=10)) == wednesday + (
        timedelta(hours=1, minutes=30)
    )
    assert active_until(window, wednesday + timedelta(hours=1, minutes=40)) is None
    assert active_until(window, monday - timedelta(days=7) + timedelta(hours=1)) is None
    assert active_until(window, monday + timedelta(days=1, hours=1)) is None  # Tuesday


def test_single_range_and_chained_windows() -> None:
    t0 = datetime(2030, 5, 1, 12, tzinfo=UTC)
    first = Window(t0, t0 + timedelta(hours=1))
    second = Window(t0 + timedelta(hours=1), t0 + timedelta(hours=3))
    assert active_until(first, t0) == t0 + timedelta(hours=1)
    assert active_until(first, t0 + timedelta(hours=1)) is None
    assert blackout_until([first, second], t0 + timedelta(minutes=5)) == t0 + timedelta(hours=3)
    assert blackout_until([first, second], t0 - timedelta(minutes=5)) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        active_until(first, datetime(2030, 5, 1, 12))
