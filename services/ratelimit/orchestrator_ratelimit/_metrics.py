"""Prometheus metrics of the ratelimit service (registered once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

DECISIONS = Counter(
    "orch_ratelimit_decisions",
    "Rate-limit decisions per requested bucket: granted, or the deny reason "
    "(tokens, paused, circuit_open, blackout, backend_unavailable).",
    ("result",),
)
THROTTLES = Counter(
    "orch_ratelimit_throttles",
    "Throttle changes recorded, by origin (upstream_429, upstream_503, operator, recovery).",
    ("origin",),
)
BACKEND_UP = Gauge(
    "orch_ratelimit_backend_up",
    "1 while the Redis bucket store answers, 0 while it is unreachable.",
)
