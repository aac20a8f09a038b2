"""Reconnect backoff: capped exponential with full jitter.

Full jitter (a uniform draw in ``[0, ceiling]``) spreads a fleet that lost the same server
over the whole window instead of having it reconnect in lock-step waves.
"""

from __future__ import annotations

import random
from typing import Final

RECONNECT_INITIAL_S: Final = 0.1
RECONNECT_CAP_S: Final = 10.0
RECONNECT_MULTIPLIER: Final = 2.0


class Backoff:
    """Delays for successive reconnect attempts.

    Attempt ``n`` (from 0) sleeps ``uniform(0, min(cap_s, initial_s * multiplier**n))``.

    Args:
        initial_s: Ceiling of the first delay.
        cap_s: Largest ceiling.
        multiplier: Growth of the ceiling per attempt.
        rng: Source of randomness (seed it in tests).
    """

    def __init__(
        self,
        initial_s: float = RECONNECT_INITIAL_S,
        cap_s: float = RECONNECT_CAP_S,
        multiplier: float = RECONNECT_MULTIPLIER,
        rng: random.Random | None = None,
    ) -> None:
        if initial_s <= 0 or cap_s < initial_s or multiplier < 1:
            raise ValueError("need 0 < initial_s <= cap_s and multiplier >= 1")
        self.initial_s = initial_s
        self.cap_s = cap_s
        self.multiplier = multiplier
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the delay of attempt ``attempt`` (from 0)."""
        # Cap the exponent too, so a long outage cannot overflow the float.
        exponent = min(attempt, 64)
        return min(self.cap_s, self.initial_s * self.multiplier**exponent)

    def next_delay(self) -> float:
        """Delay before the next attempt; advances the attempt counter."""
        delay = self._rng.uniform(0.0, self.ceiling(self.attempt))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start over after a healthy session."""
        self.attempt = 0
