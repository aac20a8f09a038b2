"""One blackout rule in two languages: the SQL function the claim statement uses
(``orchestrator.blackout_active_until``) answers exactly what ``orchestrator_core.blackouts``
answers, for random windows (single ranges, weekly recurrences crossing midnight and week
ends, open ended, clipped) and instants."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator_core.blackouts import MAX_WEEKLY_DURATION_S, Weekly, Window, active_until

pytestmark = pytest.mark.integration

BASE = datetime(2026, 1, 1, tzinfo=UTC)
instants = st.integers(0, 60 * 24 * 3600).map(lambda s: BASE + timedelta(seconds=s))
weeklies = st.builds(
    Weekly,
    days=st.frozensets(st.integers(1, 7), min_size=1),
    start_minute_utc=st.integers(0, 1439),
    duration_s=st.integers(1, MAX_WEEKLY_DURATION_S).map(float),
)


@st.composite
def windows(draw) -> Window:
    start = draw(instants)
    weekly = draw(st.none() | weeklies)
    if weekly is None:
        end = start + timedelta(seconds=draw(st.integers(1, 30 * 24 * 3600)))
    else:
        end = draw(
            st.none() | st.integers(1, 40 * 24 * 3600).map(lambda s: start + timedelta(seconds=s))
        )
    return Window(start, end, weekly)


def _sql(db, window: Window, now: datetime) -> datetime | None:
    recurrence = None if window.weekly is None else json.dumps(window.weekly.to_json())
    (until,) = db.execute(
        "SELECT orchestrator.blackout_active_until(%s, %s, %s::jsonb, %s)",
        (window.start, window.end, recurrence, now),
    ).fetchone()
    return until


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(window=windows(), now=instants)
def test_sql_and_python_agree(db, window: Window, now: datetime) -> None:
    assert _sql(db, window, now) == active_until(window, now)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(window=windows().filter(lambda w: w.weekly is not None), offset=st.integers(-120, 120))
def test_agree_at_occurrence_edges(db, window: Window, offset: int) -> None:
    # Instants a few seconds around an occurrence's start, where off-by-one errors live.
    assert window.weekly is not None
    day = window.start.date() + timedelta(days=1)
    while day.isoweekday() not in window.weekly.days:
        day += timedelta(days=1)
    begins = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        minutes=window.weekly.start_minute_utc
    )
    now = begins + timedelta(seconds=offset)
    assert _sql(db, window, now) == active_until(window, now)
