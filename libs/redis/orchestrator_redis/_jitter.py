"""How much random delay an upstream pause gets on top of the Retry-After."""

from __future__ import annotations

import random

# Jitter is at most this share of the Retry-After: it only has to spread the resumption of
# callers paused by the same outage, and every second beyond what the upstream asked for is
# throughput lost (a 1 s Retry-After with a flat 0-1 s jitter cost ~20% on a slow host).
PAUSE_JITTER_FRACTION = 0.1


def pause_jitter_s(retry_after_s: float, max_jitter_s: float, rng: random.Random) -> float:
    """Random jitter in [0, min(max_jitter_s, PAUSE_JITTER_FRACTION * retry_after_s)]."""
    ceiling = min(max_jitter_s, PAUSE_JITTER_FRACTION * max(0.0, retry_after_s))
    return rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0
