"""The incident rules (orchestrator_core.incidents.fold_failures), without a database:
threshold within a sliding window, growth with bounded samples, resolution after a quiet gap
inside a batch, per-tenant policies, and a batch split anywhere giving the same result."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator_core.incidents import (
    DEFAULT_POLICY,
    MAX_SAMPLES,
    ClusterKey,
    FailureRecord,
    IncidentPolicy,
    IncidentRecord,
    fold_failures,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = ClusterKey("acme", "nvd.fetch", uuid.UUID(int=7), "http_5xx")
OTHER = ClusterKey("acme", "nvd.fetch", None, "http_5xx")  # no source: a cluster of its own
_seq = itertools.count(1)


def _failure(key: ClusterKey, at_s: float, job: int | None = None) -> FailureRecord:
    n = next(_seq)
    return FailureRecord(
        n, key, uuid.UUID(int=job if job is not None else n), T0 + timedelta(seconds=at_s)
    )


def _ids():
    counter = itertools.count(1000)
    return lambda: uuid.UUID(int=next(counter))


def _fold(failures, incidents=None, windows=None, policy=DEFAULT_POLICY, policies=None):
    return fold_failures(
        failures,
        incidents or {},
        windows or {},
        lambda tenant: (policies or {}).get(tenant, policy),
        _ids(),
    )


def test_threshold_within_the_window_opens_one_incident_holding_those_failures() -> None:
    below = _fold([_failure(KEY, s) for s in (0, 60, 120, 180)])
    assert below.opened == []
    assert len(below.windows[KEY]) == 4
    crossing = [_failure(KEY, s) for s in (0, 60, 120, 180, 240)]
    got = _fold(crossing)
    (incident,) = got.opened
    assert incident.failure_count == 5
    assert incident.first_seen_at == T0
    assert incident.last_seen_at == T0 + timedelta(seconds=240)
    assert incident.sample_job_ids == [f.job_id for f in reversed(crossing)]  # newest first
    assert got.windows == {KEY: []}  # the window empties into the incident


def test_failures_spread_wider_than_the_window_never_open() -> None:
    spread = [_failure(KEY, s) for s in range(0, 3000, 75)]  # 4 per 5 minutes, for 50 minutes
    got = _fold(spread)
    assert got.opened == []
    assert len(got.windows[KEY]) == DEFAULT_POLICY.threshold - 1  # bounded


def test_an_open_incident_counts_every_failure_and_keeps_ten_distinct_samples() -> None:
    stored = IncidentRecord(uuid.UUID(int=1), KEY, 5, [uuid.UUID(int=9)], T0, T0)
    failures = [_failure(KEY, 10 + i, job=100 + i % 12) for i in range(30)]
    got = _fold(failures, incidents={KEY: stored})
    assert got.opened == []
    (changed,) = got.changed
    assert changed.failure_count == 35
    assert len(changed.sample_job_ids) == MAX_SAMPLES
    assert changed.sample_job_ids[0] == failures[-1].job_id
    assert len(set(changed.sample_job_ids)) == MAX_SAMPLES
    assert stored.failure_count == 5  # the input is not modified


def test_a_quiet_gap_inside_the_batch_resolves_then_a_new_burst_opens_another() -> None:
    stored = IncidentRecord(uuid.UUID(int=1), KEY, 5, [], T0, T0)
    late = 600 + 1
    got = _fold([_failure(KEY, late + s) for s in range(5)], incidents={KEY: stored})
    (resolved,) = got.changed
    assert resolved.resolved_at == T0 + DEFAULT_POLICY.quiet
    assert resolved.failure_count == 5
    (opened,) = got.opened
    assert opened.id != stored.id
    assert opened.failure_count == 5


def test_clusters_and_tenants_are_apart_and_policies_are_per_tenant() -> None:
    strict = IncidentPolicy(threshold=2, window=timedelta(seconds=30), quiet=timedelta(minutes=1))
    globex = ClusterKey("globex", "nvd.fetch", uuid.UUID(int=7), "http_5xx")
    failures = [_failure(k, s) for s in (0, 1, 2) for k in (KEY, OTHER, globex)]
    got = _fold(failures, policies={"globex": strict})
    assert [i.key for i in got.opened] == [globex]
    assert len(got.windows[KEY]) == len(got.windows[OTHER]) == 3


@pytest.mark.parametrize("split", [1, 2, 3, 5, 8])
def test_a_batch_split_anywhere_decides_the_same(split: int) -> None:
    failures = [_failure(KEY, s * 20) for s in range(12)] + [
        _failure(KEY, 2000 + s) for s in range(6)
    ]
    whole = _fold(failures)
    incidents: dict[ClusterKey, IncidentRecord] = {}
    windows: dict[ClusterKey, list[FailureRecord]] = {}
    opened: dict[uuid.UUID, IncidentRecord] = {}
    ids = _ids()
    for start in range(0, len(failures), split):
        got = fold_failures(
            failures[start : start + split], incidents, windows, lambda _: DEFAULT_POLICY, ids
        )
        for incident in [*got.opened, *got.changed]:
            incident.new = False
            opened[incident.id] = incident
            if incident.resolved_at is None:
                incidents[incident.key] = incident
            else:
                incidents.pop(incident.key, None)
        windows.update(got.windows)
    summary = sorted((i.failure_count, i.first_seen_at, i.resolved_at) for i in opened.values())
    expected = sorted(
        (i.failure_count, i.first_seen_at, i.resolved_at) for i in [*whole.opened, *whole.changed]
    )
    assert (
        summary
        == expected
        == [
            (6, T0 + timedelta(seconds=2000), None),
            (12, T0, T0 + timedelta(seconds=220) + DEFAULT_POLICY.quiet),
        ]
    )


def test_policy_bounds() -> None:
    with pytest.raises(ValueError, match="threshold"):
        IncidentPolicy(threshold=0)
    with pytest.raises(ValueError, match="positive"):
        IncidentPolicy(quiet=timedelta(0))
    assert DEFAULT_POLICY.override(None, 60, None) == IncidentPolicy(window=timedelta(seconds=60))
