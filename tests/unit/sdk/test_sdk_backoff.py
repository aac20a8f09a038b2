"""Reconnect backoff: full jitter under a capped exponential ceiling."""

from __future__ import annotations

import random

import pytest

from stella_orchestrator.worker import Backoff


def test_schedule_stays_under_the_capped_ceiling() -> None:
    backoff = Backoff(rng=random.Random(7))
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0]
    for attempt, ceiling in enumerate(ceilings):
        assert backoff.ceiling(attempt) == pytest.approx(ceiling)
        delay = backoff.next_delay()
        assert 0.0 <= delay <= ceiling
    assert backoff.attempt == len(ceilings)
    assert backoff.ceiling(10_000) == 10.0  # no overflow after a long outage


def test_jitter_spreads_over_the_whole_window() -> None:
    delays = []
    for seed in range(400):
        backoff = Backoff(rng=random.Random(seed))
        backoff.attempt = 12
        delays.append(backoff.next_delay())
    assert max(delays) <= 10.0
    assert min(delays) < 1.0
    assert max(delays) > 9.0


def test_seeded_schedule_is_reproducible_and_reset_starts_over() -> None:
    a = Backoff(rng=random.Random(42))
    b = Backoff(rng=random.Random(42))
    assert [a.next_delay() for _ in range(8)] == [b.next_delay() for _ in range(8)]
    a.reset()
    assert a.attempt == 0
    assert a.next_delay() <= 0.1


@pytest.mark.parametrize(
    "kwargs", [{"initial_s": 0}, {"initial_s": 2, "cap_s": 1}, {"multiplier": 0.5}]
)
def test_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="initial_s"):
        Backoff(**kwargs)
