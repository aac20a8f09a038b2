"""Injectable time: the domain never calls ``datetime.now()`` itself.

Every clock returns timezone-aware UTC datetimes; naive datetimes are rejected because a
naive value silently means "local time" somewhere else.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FrozenClock", "SystemClock", "ensure_utc"]


def ensure_utc(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` converted to UTC.

    Raises:
        ValueError: ``value`` is naive (has no timezone).
    """
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    """Source of the current time."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """Return ``datetime.now(UTC)``."""
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (tests, replay).

    Args:
        start: Initial time; timezone-aware (converted to UTC). Defaults to
            2025-01-01T00:00:00Z so tests are reproducible.

    Raises:
        ValueError: ``start`` is naive.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = ensure_utc(
            start if start is not None else datetime(2025, 1, 1, tzinfo=UTC), "start"
        )

    def now(self) -> datetime:
        """Return the frozen time."""
        with self._lock:
            return self._now

    def set(self, value: datetime) -> None:
        """Jump to ``value`` (may go backwards, to test clock skew).

        Raises:
            ValueError: ``value`` is naive.
        """
        value = ensure_utc(value, "value")
        with self._lock:
            self._now = value

    def advance(self, delta: float | timedelta) -> datetime:
        """Move forward by ``delta`` (seconds or a timedelta).

        Returns:
            The new time.

        Raises:
            ValueError: ``delta`` is negative (use :meth:`set` to go back).
        """
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError(f"cannot advance by a negative amount: {delta!r}")
        with self._lock:
            self._now += step
            return self._now
