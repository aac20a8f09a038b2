"""Blackout windows: pure, UTC-only evaluation of whether a window is active at an instant.

The one rule, used by the ratelimit service (Acquire, Envoy) here and by the claim statement
as the SQL function ``orchestrator.blackout_active_until`` (migration 0005): a property test
(tests/migration/test_blackout_rule.py) holds the two to the same answers.

A blackout without recurrence is the single range ``[start, end)``. A weekly recurrence
starts an occurrence on each listed ISO weekday at ``start_minute_utc`` and lasts
``duration_s`` (it may cross midnight or the end of the week); every occurrence is clipped
to ``[start, end)`` (``end`` ``None`` = open ended).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_WEEKLY_DURATION_S = 7 * 24 * 3600
# Chained windows (one starts exactly when another ends) are merged up to this many times.
_MAX_CHAIN = 16


@dataclass(frozen=True)
class Weekly:
    """A weekly recurrence: ISO weekdays (1 = Monday … 7 = Sunday), UTC start and length."""

    days: frozenset[int]
    start_minute_utc: int
    duration_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "weekly": {
                "days": sorted(self.days),
                "start_minute_utc": self.start_minute_utc,
                "duration_s": self.duration_s,
            }
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> Weekly | None:
        if not value or "weekly" not in value:
            return None
        weekly = value["weekly"]
        return cls(
            frozenset(int(d) for d in weekly["days"]),
            int(weekly["start_minute_utc"]),
            float(weekly["duration_s"]),
        )


@dataclass(frozen=True)
class Window:
    """One blackout: the range ``[start, end)`` and an optional weekly recurrence."""

    start: datetime
    end: datetime | None
    weekly: Weekly | None = None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("blackout instants must be timezone-aware")
    return value.astimezone(UTC)


def active_until(window: Window, now: datetime) -> datetime | None:
    """The end of the occurrence of ``window`` that covers ``now``, or ``None``.

    The end is exclusive and clipped to ``window.end``.
    """
    now = _utc(now)
    start = _utc(window.start)
    end = _utc(window.end) if window.end is not None else None
    if now < start or (end is not None and now >= end):
        return None
    if window.weekly is None:
        return end
    weekly = window.weekly
    if weekly.duration_s <= 0 or not weekly.days:
        return None
    duration = timedelta(seconds=weekly.duration_s)
    best: datetime | None = None
    # Any occurrence covering now began within the last `duration` (at most a week + 1 day).
    first_day = (now - duration).date() - timedelta(days=1)
    day = first_day
    while day <= now.date():
        if day.isoweekday() in weekly.days:
            begins = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                minutes=weekly.start_minute_utc
            )
            ends = begins + duration
            if end is not None:
                ends = min(ends, end)
            if max(begins, start) <= now < ends and (best is None or ends > best):
                best = ends
        day += timedelta(days=1)
    return best


def blackout_until(windows: Iterable[Window], now: datetime) -> datetime | None:
    """When the blackout covering ``now`` ends, merging windows that chain or overlap.

    Returns:
        The first instant not covered by any window (from ``now`` on), or ``None`` when no
        window is active at ``now``. Open-ended single ranges never happen (``end`` is
        required without recurrence), so the result is always finite.
    """
    candidates = list(windows)
    current = _utc(now)
    result: datetime | None = None
    for _ in range(_MAX_CHAIN):
        ends = [e for e in (active_until(w, current) for w in candidates) if e is not None]
        if not ends:
            break
        result = max(ends)
        current = result
    return result
