"""The chaos runner's reading of leader gaps (bench/chaos/_observe.py): spans without a
holder from 100 ms pg_locks samples, the span a fault opened, and the retry interval each
loop's new leader is expected within."""

from __future__ import annotations

import pytest

from bench.chaos._observe import HELD_LOOPS, Sampler, gap_after, loop_intervals


def _sampler(series: list[tuple[float, int | None]], label: str = "lease_watchdog") -> Sampler:
    sampler = Sampler("postgresql://unused")  # never started: samples are filled by hand
    for t, holders in series:
        sampler.samples.times.append(t)
        sampler.samples.holders.append(None if holders is None else {label: holders})
    return sampler


def test_a_gap_is_bounded_by_the_samples_around_it() -> None:
    # held until 1.0, none at 1.1 .. 1.7 (1.4 a failed sample), held again from 1.8
    series = [(1.0, 1), (1.1, 0), (1.25, 0), (1.4, None), (1.7, 0), (1.8, 1), (1.9, 1)]
    (gap,) = _sampler(series).gaps()["lease_watchdog"]
    assert (gap.start, gap.end) == (1.0, 1.8)
    assert gap.length == pytest.approx(0.8)
    assert gap.seen == pytest.approx(0.6)


def test_no_gap_before_the_first_leader_and_an_open_one_runs_to_the_last_sample() -> None:
    series = [(0.0, 0), (0.1, 0), (0.2, 1), (0.3, 1), (0.4, 0), (0.5, 0)]
    (gap,) = _sampler(series).gaps()["lease_watchdog"]
    assert (gap.start, gap.end, gap.first_none, gap.last_none) == (0.3, 0.5, 0.4, 0.5)


def test_the_gap_a_fault_opened_is_the_first_after_it_and_before_the_next_fault() -> None:
    series = [(t / 10, 0 if 12 <= t <= 15 or 42 <= t <= 49 else 1) for t in range(60)]
    spans = _sampler(series).gaps()["lease_watchdog"]
    assert len(spans) == 2
    after_kill = gap_after(spans, injected=1.15, until=3.0)
    assert after_kill is not None
    assert after_kill.length == pytest.approx(0.5)
    # a fault whose leader changed hands between two samples opened none; a later span (the
    # next fault's) does not count for it
    assert gap_after(spans, injected=2.0, until=4.0) is None
    later = gap_after(spans, injected=4.05, until=9.0)
    assert later is not None
    assert later.seen == pytest.approx(0.7)


def test_every_held_loop_has_a_retry_interval_read_from_the_replicas_settings() -> None:
    defaults = loop_intervals({})
    assert set(defaults) == {loop.label for loop in HELD_LOOPS}
    assert all(seconds > 0 for seconds in defaults.values())
    tuned = loop_intervals(
        {"ORCH_WATCHDOG_INTERVAL_S": "2.5", "ORCH_QUEUE_METRICS_INTERVAL_S": "7"}
    )
    assert tuned["lease_watchdog"] == 2.5
    assert tuned["queue_metrics"] == 7.0
    assert tuned["schedule_firing"] == defaults["schedule_firing"]
