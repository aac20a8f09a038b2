"""Reconnect backoff: capped exponential with full jitter.

Full jitter (a uniform draw in ``[0, ceiling]``) spreads a fleet that lost the same server
over the whole window instead of having it reconnect in lock-step waves.

:class:`SplitMix64` is a seeded generator that the Go and Rust SDKs implement identically,
so a schedule drawn with ``Backoff(rng=SplitMix64(seed))`` is the same, bit for bit, in all
three languages (the shared vectors in ``tests/vectors/backoff.json``).
"""

from __future__ import annotations

import random
from typing import Final

RECONNECT_INITIAL_S: Final = 0.1
RECONNECT_CAP_S: Final = 10.0
RECONNECT_MULTIPLIER: Final = 2.0


_MASK_64: Final = (1 << 64) - 1


class SplitMix64(random.Random):
    """SplitMix64 (Steele, Lea & Flood 2014) as a ``random.Random``: ``random()`` takes the
    top 53 bits of each 64-bit output, so ``uniform(a, b)`` = ``a + (b - a) * random()`` is
    the same arithmetic in every SDK.

    Args:
        seed: Initial 64-bit state.
    """

    def __init__(self, seed: int = 0) -> None:
        self._state = 0
        super().__init__(seed)

    def seed(self, a: object = None, version: int = 2) -> None:
        self._state = int(a or 0) & _MASK_64  # type: ignore[call-overload]

    def next_u64(self) -> int:
        """The next 64 random bits."""
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK_64
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK_64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK_64
        return z ^ (z >> 31)

    def random(self) -> float:
        """Uniform in ``[0, 1)`` from the top 53 bits of the next output."""
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def getrandbits(self, k: int) -> int:
        bits = 0
        for shift in range(0, k, 64):
            bits |= self.next_u64() << shift
        return bits & ((1 << k) - 1)

    def getstate(self) -> tuple[int, ...]:
        return (self._state,)

    def setstate(self, state: tuple[int, ...]) -> None:
        (self._state,) = state


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
