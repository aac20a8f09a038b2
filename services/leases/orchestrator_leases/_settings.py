"""Tunables of the leases service, read from the environment.

| variable | default | meaning |
|---|---|---|
| ``ORCH_LEASE_TTL_S`` | ``30`` | Length of every lease; workers heartbeat every third of it. |
| ``ORCH_CLAIM_BATCH`` | ``100`` | Most jobs one claim statement leases (across waiting sessions). |
| ``ORCH_WATCHDOG_INTERVAL_S`` | ``1`` | How often the leader watchdog expires overdue leases. |
| ``ORCH_COMPLETER_FLUSH_MS`` | ``2`` | How long the completer gathers reports before one flush. |
| ``ORCH_QUEUE_METRICS_INTERVAL_S`` | ``15`` | Pause between the leader's queue snapshots. |
| ``ORCH_WORK_STREAM_MAX_AGE_S`` | ``1500`` | Work streams drain after 90-100 % of it (below). |

``ORCH_WORK_STREAM_MAX_AGE_S``: a drained stream's worker finishes what it holds and
reconnects, spreading over replicas added since it connected. It is kept below the servers'
30 min connection age plus its 30 min grace, so a connection is never cut under a stream.

Rate limiting (see :mod:`orchestrator_leases._ratelimit`):

* ``ORCH_LEASES_RATELIMIT`` (``on``): ``on`` leases a job only when its
  ``{tenant, source host}`` bucket grants a token (and its source is not paused or blacked
  out); ``off`` skips the token buckets (no Redis). Quotas (``max_active``,
  ``max_per_hour``/``burst``, paused quotas) and per-source concurrency caps hold either way.
* ``ORCH_RATELIMIT_DEFAULT_BUCKET`` (``none``): the bucket of a ``{tenant, host}`` with
  neither its own config nor a tenant default: ``none`` never binds (only upstream
  Retry-After pauses and open circuits hold such jobs back), ``CAPACITY/REFILL_PER_S``
  (e.g. ``10/5``) caps every unconfigured bucket. Set it alike on leases and ratelimit.
* ``ORCH_LEASES_RATELIMIT_FAILURE`` (``closed``): while Redis is down, ``closed`` leases
  nothing (candidates wait 1 s and stay ready); ``open`` leases without tokens.
* ``ORCH_LEASES_RATELIMIT_REDIS_TIMEOUT_S`` (``0.5``): Redis connect and socket timeout.
* ``ORCH_RATELIMIT_KEY_PREFIX`` (``orch:rl:``): Redis key prefix of the buckets (the
  ratelimit service's, so both see the same buckets).
* ``ORCH_RATELIMIT_JITTER_S`` (``1``): most random jitter added to an upstream retry-after.

The Redis URL is ``ORCH_REDIS_URL`` (:class:`orchestrator_grpckit.ServiceConfig`).

Ports and the database come from :class:`orchestrator_grpckit.ServiceConfig` (leases: gRPC
``50052``, metrics ``9103``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from orchestrator_grpckit import ConfigError, env_choice, env_number
from orchestrator_redis import (
    NON_BINDING,
    BucketConfig,
    InvalidBucketArgument,
    parse_default_bucket,
)

DEFAULT_LEASE_TTL_S = 30.0
DEFAULT_CLAIM_BATCH = 100
DEFAULT_WATCHDOG_INTERVAL_S = 1.0
DEFAULT_COMPLETER_FLUSH_MS = 2.0
# One grouped count over the unfinished jobs per interval; a Prometheus scrape interval.
DEFAULT_QUEUE_METRICS_INTERVAL_S = 15.0
DEFAULT_WORK_STREAM_MAX_AGE_S = 1500.0
MAX_CLAIM_BATCH = 500
DEFAULT_KEY_PREFIX = "orch:rl:"


@dataclass(frozen=True)
class LeaseSettings:
    """Tunables of one leases process.

    Attributes:
        lease_ttl_s: lease length; heartbeats are asked for every ``lease_ttl_s / 3``.
        claim_batch: most jobs leased by one claim statement.
        watchdog_interval_s: pause between watchdog passes of the leader.
        completer_flush_ms: linger time of the completer before a flush.
        work_stream_max_age_s: a Work stream is drained after 90-100 % of this.
        ratelimit: lease only what the rate limits admit (token buckets, blackouts,
            paused sources) and feed worker results back into the buckets.
        ratelimit_failure: ``closed`` or ``open``, what admission does while Redis is down.
        ratelimit_key_prefix: Redis key prefix of the buckets.
        ratelimit_jitter_s: most jitter added to an upstream retry-after.
        ratelimit_redis_timeout_s: Redis connect and socket timeout.
        ratelimit_default_bucket: config of buckets with no config of their own or of their
            tenant (:data:`orchestrator_redis.NON_BINDING` by default).
        queue_metrics_interval_s: pause between the leader's queue-depth snapshots.
    """

    lease_ttl_s: float = DEFAULT_LEASE_TTL_S
    claim_batch: int = DEFAULT_CLAIM_BATCH
    watchdog_interval_s: float = DEFAULT_WATCHDOG_INTERVAL_S
    completer_flush_ms: float = DEFAULT_COMPLETER_FLUSH_MS
    work_stream_max_age_s: float = DEFAULT_WORK_STREAM_MAX_AGE_S
    ratelimit: bool = True
    ratelimit_failure: Literal["closed", "open"] = "closed"
    ratelimit_key_prefix: str = DEFAULT_KEY_PREFIX
    ratelimit_jitter_s: float = 1.0
    ratelimit_redis_timeout_s: float = 0.5
    ratelimit_default_bucket: BucketConfig = NON_BINDING
    queue_metrics_interval_s: float = DEFAULT_QUEUE_METRICS_INTERVAL_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LeaseSettings:
        """Reads the variables of the module docstring.

        Raises:
            ConfigError: a value is not a number in its range.
        """
        env = os.environ if environ is None else environ
        ttl = env_number(env, "ORCH_LEASE_TTL_S", DEFAULT_LEASE_TTL_S, 0.5, 3600)
        batch = int(env_number(env, "ORCH_CLAIM_BATCH", DEFAULT_CLAIM_BATCH, 1, MAX_CLAIM_BATCH))
        interval = env_number(
            env, "ORCH_WATCHDOG_INTERVAL_S", DEFAULT_WATCHDOG_INTERVAL_S, 0.05, 3600
        )
        flush = env_number(env, "ORCH_COMPLETER_FLUSH_MS", DEFAULT_COMPLETER_FLUSH_MS, 0, 1000)
        max_age = env_number(
            env, "ORCH_WORK_STREAM_MAX_AGE_S", DEFAULT_WORK_STREAM_MAX_AGE_S, 1, 1800
        )
        queue_metrics = env_number(
            env, "ORCH_QUEUE_METRICS_INTERVAL_S", DEFAULT_QUEUE_METRICS_INTERVAL_S, 0.05, 3600
        )
        ratelimit = env_choice(env, "ORCH_LEASES_RATELIMIT", ("on", "off"), "on") == "on"
        failure = env_choice(env, "ORCH_LEASES_RATELIMIT_FAILURE", ("closed", "open"), "closed")
        timeout = env_number(env, "ORCH_LEASES_RATELIMIT_REDIS_TIMEOUT_S", 0.5, 0.01, 60)
        jitter = env_number(env, "ORCH_RATELIMIT_JITTER_S", 1.0, 0, 3600)
        prefix = env.get("ORCH_RATELIMIT_KEY_PREFIX", "") or DEFAULT_KEY_PREFIX
        if "{" in prefix or "}" in prefix:
            raise ConfigError(f"ORCH_RATELIMIT_KEY_PREFIX={prefix!r} must not contain braces")
        try:
            default_bucket = parse_default_bucket(env.get("ORCH_RATELIMIT_DEFAULT_BUCKET", ""))
        except InvalidBucketArgument as exc:
            raise ConfigError(f"ORCH_RATELIMIT_DEFAULT_BUCKET: {exc}") from None
        return cls(
            ttl,
            batch,
            interval,
            flush,
            work_stream_max_age_s=max_age,
            ratelimit=ratelimit,
            ratelimit_failure="open" if failure == "open" else "closed",
            ratelimit_key_prefix=prefix,
            ratelimit_jitter_s=jitter,
            ratelimit_redis_timeout_s=timeout,
            ratelimit_default_bucket=default_bucket,
            queue_metrics_interval_s=queue_metrics,
        )
