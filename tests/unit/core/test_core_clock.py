"""Clocks: aware UTC only, frozen clock moves only when told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchestrator_core import Clock, FrozenClock, SystemClock, ensure_utc

T0 = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)


def test_frozen_clock_stands_still_and_advances() -> None:
    clock = FrozenClock(T0)
    assert clock.now() == T0
    assert clock.now() == T0
    assert clock.advance(1.5) == T0 + timedelta(seconds=1.5)
    assert clock.advance(timedelta(minutes=2)) == T0 + timedelta(seconds=121.5)
    assert clock.now() == T0 + timedelta(seconds=121.5)


def test_frozen_clock_set_may_go_back() -> None:
    clock = FrozenClock(T0)
    earlier = T0 - timedelta(hours=1)
    clock.set(earlier)
    assert clock.now() == earlier


def test_frozen_clock_converts_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    clock = FrozenClock(datetime(2025, 6, 1, 10, 30, tzinfo=plus2))
    assert clock.now() == T0
    assert clock.now().utcoffset() == timedelta(0)
    assert clock.now().tzinfo is UTC


def test_frozen_clock_has_a_reproducible_default() -> None:
    assert FrozenClock().now() == datetime(2025, 1, 1, tzinfo=UTC)


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2025, 6, 1, 8, 30)
    with pytest.raises(ValueError, match="timezone-aware"):
        FrozenClock(naive)
    clock = FrozenClock(T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(naive)
    assert clock.now() == T0
    with pytest.raises(ValueError, match="timezone-aware"):
        ensure_utc(naive)


def test_advance_refuses_negative_steps() -> None:
    clock = FrozenClock(T0)
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="negative"):
        clock.advance(timedelta(seconds=-1))
    assert clock.now() == T0


def test_system_clock_is_aware_utc_and_near_now() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(FrozenClock(T0), Clock)
    assert not isinstance(object(), Clock)
