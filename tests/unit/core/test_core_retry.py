"""Retry policy validation, backoff math and the retry-or-dead decision."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator_core import (
    InvalidArgument,
    JobState,
    Reason,
    RetryPolicy,
    backoff_ceiling_s,
    backoff_s,
    decide_failure,
    failure_reason,
)

POLICY = RetryPolicy(max_attempts=5, initial_backoff_s=1.0, max_backoff_s=10.0, multiplier=2.0)


def test_defaults_are_valid() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_backoff_s) == (5, 1.0)
    assert (policy.max_backoff_s, policy.multiplier) == (300.0, 2.0)
    assert policy.validate() is policy


@pytest.mark.parametrize(
    ("policy", "fields"),
    [
        (RetryPolicy(max_attempts=0), {"retry_policy.max_attempts"}),
        (RetryPolicy(max_attempts=101), {"retry_policy.max_attempts"}),
        (RetryPolicy(initial_backoff_s=0), {"retry_policy.initial_backoff_s"}),
        (RetryPolicy(max_backoff_s=-1), {"retry_policy.max_backoff_s"}),
        (RetryPolicy(initial_backoff_s=10, max_backoff_s=5), {"retry_policy.max_backoff_s"}),
        (RetryPolicy(multiplier=0.5), {"retry_policy.multiplier"}),
        (RetryPolicy(multiplier=math.nan), {"retry_policy.multiplier"}),
        (RetryPolicy(initial_backoff_s=math.inf), {"retry_policy.initial_backoff_s"}),
        (
            RetryPolicy(max_attempts=0, initial_backoff_s=-1, multiplier=0),
            {
                "retry_policy.max_attempts",
                "retry_policy.initial_backoff_s",
                "retry_policy.multiplier",
            },
        ),
    ],
)
def test_validate_reports_every_bad_field(policy: RetryPolicy, fields: set[str]) -> None:
    with pytest.raises(InvalidArgument) as info:
        policy.validate()
    assert {v.field for v in info.value.violations} == fields


def test_validate_boundaries_and_prefix() -> None:
    RetryPolicy(max_attempts=1).validate()
    RetryPolicy(max_attempts=100).validate()
    RetryPolicy(initial_backoff_s=5, max_backoff_s=5, multiplier=1).validate()
    with pytest.raises(InvalidArgument) as info:
        RetryPolicy(max_attempts=True).validate(field="job.retry")
    assert [v.field for v in info.value.violations] == ["job.retry.max_attempts"]


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (50, 10.0), (5000, 10.0)],
)
def test_backoff_ceiling_grows_exponentially_then_caps(attempt: int, ceiling: float) -> None:
    assert backoff_ceiling_s(POLICY, attempt) == ceiling


def test_backoff_ceiling_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        backoff_ceiling_s(POLICY, 0)


def test_jitter_stays_within_bounds_and_spreads() -> None:
    rng = random.Random(42)
    samples = [backoff_s(POLICY, 4, rng) for _ in range(2000)]
    assert all(0.0 <= s <= 8.0 for s in samples)
    # Full jitter: uniform over [0, 8] -> both halves are well populated.
    assert min(samples) < 0.5
    assert max(samples) > 7.5
    assert 3.5 < sum(samples) / len(samples) < 4.5


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    first = [backoff_s(POLICY, 3, random.Random(7)) for _ in range(3)]
    assert len(set(first)) == 1
    assert first[0] == random.Random(7).uniform(0, 4.0)


def test_retry_after_is_a_floor() -> None:
    rng = random.Random(1)
    assert all(backoff_s(POLICY, 1, rng, retry_after_s=30.0) == 30.0 for _ in range(100))
    # a small Retry-After never shortens the jittered delay
    values = [backoff_s(POLICY, 5, random.Random(i), retry_after_s=0.001) for i in range(50)]
    jittered = [backoff_s(POLICY, 5, random.Random(i)) for i in range(50)]
    assert values == [max(j, 0.001) for j in jittered]
    with pytest.raises(ValueError, match="retry_after_s"):
        backoff_s(POLICY, 1, rng, retry_after_s=-1.0)
    with pytest.raises(ValueError, match="retry_after_s"):
        backoff_s(POLICY, 1, rng, retry_after_s=math.inf)


@given(
    attempt=st.integers(min_value=1, max_value=200),
    seed=st.integers(min_value=0, max_value=2**32),
    retry_after=st.none() | st.floats(min_value=0, max_value=1e6),
)
def test_backoff_property(attempt: int, seed: int, retry_after: float | None) -> None:
    delay = backoff_s(POLICY, attempt, random.Random(seed), retry_after_s=retry_after)
    ceiling = backoff_ceiling_s(POLICY, attempt)
    assert 0 <= ceiling <= POLICY.max_backoff_s
    if retry_after is None:
        assert 0 <= delay <= ceiling
    else:
        assert retry_after <= delay <= max(ceiling, retry_after)


@pytest.mark.parametrize(
    ("attempt", "retryable", "state", "reason"),
    [
        (1, True, JobState.READY, Reason.RETRY_BACKOFF),
        (4, True, JobState.READY, Reason.RETRY_BACKOFF),
        (5, True, JobState.DEAD, Reason.ATTEMPTS_EXHAUSTED),
        (6, True, JobState.DEAD, Reason.ATTEMPTS_EXHAUSTED),
        (1, False, JobState.DEAD, Reason.NON_RETRYABLE),
        (5, False, JobState.DEAD, Reason.NON_RETRYABLE),
    ],
)
def test_decide_failure(attempt: int, retryable: bool, state: JobState, reason: Reason) -> None:
    assert decide_failure(POLICY, attempt, retryable) is state
    assert failure_reason(POLICY, attempt, retryable) is reason


def test_failure_reason_for_lease_expiry_and_single_attempt() -> None:
    assert (
        failure_reason(POLICY, 2, True, retry_reason=Reason.LEASE_EXPIRED) is Reason.LEASE_EXPIRED
    )
    assert (
        failure_reason(POLICY, 5, True, retry_reason=Reason.LEASE_EXPIRED)
        is Reason.ATTEMPTS_EXHAUSTED
    )
    once = RetryPolicy(max_attempts=1)
    assert decide_failure(once, 1, True) is JobState.DEAD
    with pytest.raises(ValueError, match="attempt"):
        decide_failure(POLICY, 0, True)
