"""Retry policy: capped exponential backoff with full jitter, and the failure decision.

``attempt`` is always the 1-based number of the attempt that just failed. A job gets at most
``max_attempts`` attempts: the failure of attempt ``max_attempts`` dead-letters it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from orchestrator_core.errors import FieldViolation, InvalidArgument
from orchestrator_core.states import JobState, Reason

__all__ = [
    "MAX_ATTEMPTS_LIMIT",
    "RetryPolicy",
    "backoff_ceiling_s",
    "backoff_s",
    "decide_failure",
    "failure_reason",
]

MAX_ATTEMPTS_LIMIT = 100
"""Largest ``max_attempts`` a policy may ask for."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a job is retried.

    Attributes:
        max_attempts: Attempts in total, first one included (1..100).
        initial_backoff_s: Backoff ceiling after the first failure, in seconds (> 0).
        max_backoff_s: Cap of the backoff ceiling, in seconds (>= ``initial_backoff_s``).
        multiplier: Growth of the ceiling per attempt (>= 1).
    """

    max_attempts: int = 5
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 300.0
    multiplier: float = 2.0

    def validate(self, field: str = "retry_policy") -> RetryPolicy:
        """Check every field and report all problems at once.

        Args:
            field: Path prefix for the violations (the request field holding the policy).

        Returns:
            ``self``, so the call can be chained.

        Raises:
            InvalidArgument: With one ``FieldViolation`` per bad field.
        """
        violations: list[FieldViolation] = []

        def bad(name: str, description: str) -> None:
            violations.append(FieldViolation(f"{field}.{name}", description))

        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            bad("max_attempts", f"must be an integer, got {self.max_attempts!r}")
        elif not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            bad(
                "max_attempts",
                f"must be between 1 and {MAX_ATTEMPTS_LIMIT}, got {self.max_attempts}",
            )
        initial_ok = _positive_finite(self.initial_backoff_s)
        if not initial_ok:
            bad("initial_backoff_s", f"must be > 0 seconds, got {self.initial_backoff_s!r}")
        if not _positive_finite(self.max_backoff_s):
            bad("max_backoff_s", f"must be > 0 seconds, got {self.max_backoff_s!r}")
        elif initial_ok and self.max_backoff_s < self.initial_backoff_s:
            bad(
                "max_backoff_s",
                f"must be >= initial_backoff_s ({self.initial_backoff_s}), "
                f"got {self.max_backoff_s}",
            )
        if not (_is_number(self.multiplier) and math.isfinite(self.multiplier)) or (
            self.multiplier < 1
        ):
            bad("multiplier", f"must be >= 1, got {self.multiplier!r}")
        if violations:
            raise InvalidArgument(f"invalid {field}", violations)
        return self


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value > 0


def backoff_ceiling_s(policy: RetryPolicy, attempt: int) -> float:
    """Upper bound of the delay before the retry that follows failed ``attempt``.

    Args:
        policy: The job's retry policy.
        attempt: 1-based number of the attempt that failed.

    Returns:
        ``min(max_backoff_s, initial_backoff_s * multiplier ** (attempt - 1))``.

    Raises:
        ValueError: ``attempt`` < 1.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    try:
        raw = policy.initial_backoff_s * policy.multiplier ** (attempt - 1)
    except OverflowError:  # float power overflows long before 100 attempts of a big multiplier
        return float(policy.max_backoff_s)
    return float(min(policy.max_backoff_s, raw))


def backoff_s(
    policy: RetryPolicy,
    attempt: int,
    rng: random.Random,
    retry_after_s: float | None = None,
) -> float:
    """Delay before retrying, with full jitter (uniform between 0 and the ceiling).

    Full jitter spreads the retries of jobs that failed together (an upstream outage) instead
    of sending them back in synchronized waves.

    Args:
        policy: The job's retry policy.
        attempt: 1-based number of the attempt that failed.
        rng: Source of randomness; inject a seeded ``random.Random`` in tests.
        retry_after_s: A ``Retry-After`` the worker reported; the delay is never shorter.

    Returns:
        Seconds to wait, ``max(uniform(0, ceiling), retry_after_s)``.

    Raises:
        ValueError: ``attempt`` < 1 or ``retry_after_s`` negative or not finite.
    """
    ceiling = backoff_ceiling_s(policy, attempt)
    delay = rng.uniform(0.0, ceiling)
    if retry_after_s is not None:
        if not math.isfinite(retry_after_s) or retry_after_s < 0:
            raise ValueError(f"retry_after_s must be a finite number >= 0, got {retry_after_s}")
        delay = max(delay, float(retry_after_s))
    return delay


def decide_failure(policy: RetryPolicy, attempt: int, retryable: bool) -> JobState:
    """Where a job goes after failed ``attempt``.

    Args:
        policy: The job's retry policy.
        attempt: 1-based number of the attempt that failed.
        retryable: Whether the failure may succeed on another try.

    Returns:
        ``READY`` (retry after a backoff) when retryable and attempts remain, else ``DEAD``.

    Raises:
        ValueError: ``attempt`` < 1.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if retryable and attempt < policy.max_attempts:
        return JobState.READY
    return JobState.DEAD


def failure_reason(
    policy: RetryPolicy,
    attempt: int,
    retryable: bool,
    *,
    retry_reason: Reason = Reason.RETRY_BACKOFF,
) -> Reason:
    """Reason code that goes with :func:`decide_failure`'s decision.

    Args:
        policy: The job's retry policy.
        attempt: 1-based number of the attempt that failed.
        retryable: Whether the failure may succeed on another try.
        retry_reason: Reason used when the job is retried, e.g. ``LEASE_EXPIRED`` when the
            failure was an expired lease rather than a reported error.

    Returns:
        ``retry_reason`` when retried, ``NON_RETRYABLE`` or ``ATTEMPTS_EXHAUSTED`` when dead.
    """
    if decide_failure(policy, attempt, retryable) is JobState.READY:
        return retry_reason
    return Reason.NON_RETRYABLE if not retryable else Reason.ATTEMPTS_EXHAUSTED
