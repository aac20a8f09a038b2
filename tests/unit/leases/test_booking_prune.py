"""The per-key booking map of refused candidates (``LeaseLimiter._booked``) stays bounded
without rebuilding itself on every booking once it holds many live keys."""

from __future__ import annotations

import random
from typing import Any

import pytest

from orchestrator_leases import _ratelimit
from orchestrator_leases._ratelimit import LeaseLimiter


def _limiter(monkeypatch: pytest.MonkeyPatch, cap: int) -> LeaseLimiter:
    """A limiter whose booking map is pruned from ``cap`` keys on."""
    monkeypatch.setattr(_ratelimit, "MAX_BOOKED_KEYS", cap)
    limiter = LeaseLimiter(None, None, rng=random.Random(3))  # type: ignore[arg-type]
    assert limiter._prune_booked_at == cap
    return limiter


def _book(limiter: LeaseLimiter, host: str, now_s: float, rate: float = 10.0) -> list[float]:
    return limiter._come_back(("t", host), 3, 1.0 / rate, rate, now_s)


def test_keys_whose_slots_passed_are_pruned_and_live_ones_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cap = random.randint(5, 12)
    limiter = _limiter(monkeypatch, cap)
    for i in range(cap - 1):
        _book(limiter, f"old{i}", now_s=100.0)
    live = _book(limiter, "live", now_s=1_000.0)
    assert len(limiter._booked) == cap
    # the next booking finds the map full: the old keys' slots have passed, "live"'s have not
    _book(limiter, "new", now_s=1_000.0)
    assert set(limiter._booked) == {("t", "live"), ("t", "new")}
    # the live key's booking survived: its next candidates continue after its slots
    again = _book(limiter, "live", now_s=1_000.0)
    assert min(again) > max(live)


def test_many_live_keys_do_not_rebuild_the_map_on_every_booking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cap = random.randint(4, 10)
    limiter = _limiter(monkeypatch, cap)
    rebuilds = 0
    seen: Any = limiter._booked
    keys = 10 * cap
    for i in range(keys):
        _book(limiter, f"h{i}", now_s=50.0)  # every slot still ahead: nothing to prune
        if limiter._booked is not seen:
            rebuilds += 1
            seen = limiter._booked
    assert len(limiter._booked) == keys
    # the threshold doubles after each pruning: log2(keys / cap) + 1 rebuilds, not one per key
    assert rebuilds <= 5
    assert limiter._prune_booked_at >= keys
