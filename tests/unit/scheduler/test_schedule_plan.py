"""The pure half of schedule firing: cron arithmetic, catch-up and overlap policies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator_core import InvalidArgument, ScheduleRecord
from orchestrator_scheduler._firing import (
    LATE_GRACE_S,
    check_cron,
    next_after,
    plan,
    run_identity,
)

T = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _schedule(
    next_fire_at, *, catch_up="one", window=None, overlap="skip", buffered=None, cron="* * * * *"
):
    return ScheduleRecord(
        id=uuid.uuid4(),
        tenant="acme",
        name="plan",
        cron=cron,
        next_fire_at=next_fire_at,
        catch_up=catch_up,
        catch_up_window=window,
        overlap=overlap,
        buffered_fire_at=buffered,
    )


def test_cron_aliases_and_five_fields_are_accepted_in_utc() -> None:
    assert check_cron(" @hourly ") == "@hourly"
    assert next_after("@hourly", T + timedelta(minutes=5)) == T + timedelta(hours=1)
    assert next_after("0 */6 * * *", T) == datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    assert next_after("* * * * *", T) == T + MINUTE  # strictly after


@pytest.mark.parametrize(
    ("cron", "needle"),
    [
        ("", "required"),
        ("* * * *", "5 fields"),
        ("0 0 * * * *", "5 fields"),
        ("61 * * * *", "valid"),
    ],
)
def test_bad_cron_is_invalid_argument(cron: str, needle: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        check_cron(cron)
    assert needle in str(err.value.violations[0].description)


def test_on_time_fire() -> None:
    p = plan(_schedule(T), T + timedelta(seconds=2), open_run=False)
    assert p.fires == [T]
    assert p.next_fire_at == T + MINUTE


def test_catch_up_policies_after_ten_missed_minutes() -> None:
    now = T + 10 * MINUTE + timedelta(seconds=5)
    due = [T + i * MINUTE for i in range(11)]
    assert plan(_schedule(T, catch_up="all"), now, open_run=False).fires == due
    assert plan(_schedule(T, catch_up="one"), now, open_run=False).fires == [due[-1]]
    assert plan(_schedule(T, catch_up="skip"), now, open_run=False).fires == [due[-1]]
    windowed = _schedule(T, catch_up="all", window=timedelta(minutes=3))
    assert plan(windowed, now, open_run=False).fires == due[-3:]
    for policy in ("all", "one", "skip"):
        assert (
            plan(_schedule(T, catch_up=policy), now, open_run=False).next_fire_at == T + 11 * MINUTE
        )


def test_skip_drops_a_fire_time_later_than_the_grace() -> None:
    late = T + timedelta(seconds=LATE_GRACE_S + 1)
    hourly = {"cron": "@hourly"}
    assert plan(_schedule(T, catch_up="skip", **hourly), late, open_run=False).fires == []
    assert plan(_schedule(T, catch_up="one", **hourly), late, open_run=False).fires == [T]


def test_overlap_policies_while_a_run_is_unfinished() -> None:
    now = T + timedelta(seconds=1)
    assert plan(_schedule(T, overlap="skip"), now, open_run=True).fires == []
    assert plan(_schedule(T, overlap="allow"), now, open_run=True).fires == [T]
    buffered = plan(_schedule(T, overlap="buffer_one"), now, open_run=True)
    assert (buffered.fires, buffered.buffered_fire_at) == ([], T)
    # the buffered fire time goes once the run finished, before the new one
    later = T + MINUTE + timedelta(seconds=1)
    resumed = plan(_schedule(T + MINUTE, overlap="buffer_one", buffered=T), later, open_run=False)
    assert resumed.fires == [T, T + MINUTE]
    assert resumed.buffered_fire_at is None
    # still running: the newer fire time replaces the buffered one (at most one kept)
    kept = plan(_schedule(T + MINUTE, overlap="buffer_one", buffered=T), later, open_run=True)
    assert (kept.fires, kept.buffered_fire_at) == ([], T + MINUTE)


def test_run_identity_is_a_function_of_schedule_and_fire_time() -> None:
    sid = uuid.uuid4()
    assert run_identity(sid, T) == run_identity(sid, T.astimezone(UTC))
    assert run_identity(sid, T) != run_identity(sid, T + MINUTE)
    assert run_identity(sid, T)[1] == f"schedule:{sid}:2026-05-04T10:00:00Z"
