"""Prometheus metrics of the leases service (registered once per process).

docs/metrics.md lists every metric with its labels and their bounds. ``job_type`` is
bounded by the job types workers register (a deployment's handful); ``state`` by the three
unfinished states; ``error_class`` by the ErrorClass enum; tenants by the tenants table.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LEASES_CLAIMED = Counter(
    "orch_leases_claimed", "Jobs leased to workers, by job type.", ("job_type",)
)
LEASES_COMPLETED = Counter("orch_leases_completed", "Completions applied on current leases.")
LEASES_FAILED = Counter(
    "orch_leases_failed", "Failures applied on current leases, by error class.", ("error_class",)
)
LEASES_EXPIRED = Counter("orch_leases_expired", "Leases the watchdog expired.")
LEASES_RELEASED = Counter(
    "orch_leases_released", "Leases released at once because their Work stream ended."
)
COMPLETER_RETRIES = Counter(
    "orch_leases_completer_retries",
    "Completer flushes tried again after a transient database failure, by kind "
    "(aborted: deadlock or serialization failure; unavailable: connection lost).",
    ("kind",),
)
LEASE_SESSIONS = Gauge("orch_lease_sessions", "Open Work streams in this process.")
JOB_START_LATENCY_SECONDS = Histogram(
    "orch_job_start_latency_seconds",
    "Time from a job becoming claimable (not_before, or creation) to its lease, in seconds.",
    ("job_type",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RATELIMIT_BACKEND_UP = Gauge(
    "orch_leases_ratelimit_backend_up",
    "1 while the rate-limit backend (Redis) answers the leases process, else 0.",
)
LEASES_DEFERRED = Counter(
    "orch_leases_deferred",
    "Claim candidates deferred (not_before moved) instead of leased, by reason.",
    ("reason",),
)
THROTTLES = Counter(
    "orch_leases_throttles",
    "Buckets throttled after upstream 429/5xx failures reported by workers, by origin.",
    ("origin",),
)
JOB_RUN_DURATION_SECONDS = Histogram(
    "orch_job_run_duration_seconds",
    "Time from a job's lease to its successful completion (database clock), by job type.",
    ("job_type",),
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
