"""Settings of the ratelimit service read from ``ORCH_RATELIMIT_*`` environment variables.

* ``ORCH_RATELIMIT_REDIS_FAILURE`` (``closed``): what Acquire answers while Redis is down.
  ``closed`` denies every item (deny_reason ``backend_unavailable``, retry after 1 s; Envoy
  gets OVER_LIMIT); ``open`` grants everything.
* ``ORCH_RATELIMIT_REDIS_TIMEOUT_S`` (``0.5``): Redis connect and socket timeout, so a dead
  Redis costs at most this per call.
* ``ORCH_RATELIMIT_PROBE_INTERVAL_S`` (``1``): how often the backend probe pings Redis (flips
  the health status and ``orch_ratelimit_backend_up``).
* ``ORCH_RATELIMIT_KEY_PREFIX`` (``orch:rl:``): Redis key prefix of the buckets.
* ``ORCH_RATELIMIT_JITTER_S`` (``1``): most random jitter added to an upstream Retry-After.
* ``ORCH_RATELIMIT_ENVOY_AUTH`` (``none``): ``none`` also serves Envoy's ShouldRateLimit
  without a token on the Envoy port (trusted network only); ``token`` serves it only on
  the main port, with a bearer token (scope ``orch:work``).
* ``ORCH_RATELIMIT_ENVOY_GRPC_PORT`` (``8081``): port of the token-less Envoy listener
  (with ``ENVOY_AUTH=none``; 0 picks a free port).
* ``ORCH_RATELIMIT_DEFAULT_BUCKET`` (``none``): config of a ``{tenant, host}`` bucket with
  neither its own config nor a tenant default: ``none`` never binds (upstream Retry-After
  pauses and open circuits still hold), ``CAPACITY/REFILL_PER_S`` (e.g. ``10/5``) caps every
  unconfigured bucket. Set it alike on leases and ratelimit, which share the buckets.
* ``ORCH_RATELIMIT_BUCKET_METRICS_INTERVAL_S`` (``15``): pause between the leader's snapshots
  of every bucket's circuit state and rate (docs/metrics.md).
* ``ORCH_RATELIMIT_ALLOW_REQUEST_CLOCK`` (``false``): accept ``AcquireRequest.now``
  (deterministic tests only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from orchestrator_grpckit import ConfigError, env_number
from orchestrator_redis import (
    NON_BINDING,
    BucketConfig,
    InvalidBucketArgument,
    parse_default_bucket,
)

FailurePolicy = Literal["closed", "open"]
EnvoyAuth = Literal["none", "token"]

DEFAULT_ENVOY_PORT = 8081
DEFAULT_BUCKET_METRICS_INTERVAL_S = 15.0


@dataclass(frozen=True)
class RatelimitSettings:
    """Runtime policy of the ratelimit service (see the module docstring for the env vars)."""

    redis_failure: FailurePolicy = "closed"
    redis_timeout_s: float = 0.5
    probe_interval_s: float = 1.0
    key_prefix: str = "orch:rl:"
    jitter_s: float = 1.0
    envoy_auth: EnvoyAuth = "none"
    envoy_port: int = DEFAULT_ENVOY_PORT
    allow_request_clock: bool = False
    default_bucket: BucketConfig = NON_BINDING
    bucket_metrics_interval_s: float = DEFAULT_BUCKET_METRICS_INTERVAL_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RatelimitSettings:
        env = os.environ if environ is None else environ
        failure = env.get("ORCH_RATELIMIT_REDIS_FAILURE", "closed").strip().lower() or "closed"
        if failure not in ("closed", "open"):
            raise _bad("ORCH_RATELIMIT_REDIS_FAILURE", failure, "closed or open")
        envoy_auth = env.get("ORCH_RATELIMIT_ENVOY_AUTH", "none").strip().lower() or "none"
        if envoy_auth not in ("none", "token"):
            raise _bad("ORCH_RATELIMIT_ENVOY_AUTH", envoy_auth, "none or token")
        try:
            default_bucket = parse_default_bucket(env.get("ORCH_RATELIMIT_DEFAULT_BUCKET", ""))
        except InvalidBucketArgument as exc:
            raise ConfigError(f"ORCH_RATELIMIT_DEFAULT_BUCKET: {exc}") from None
        return cls(
            redis_failure=failure,  # type: ignore[arg-type]
            redis_timeout_s=_float(env, "ORCH_RATELIMIT_REDIS_TIMEOUT_S", 0.5),
            probe_interval_s=_float(env, "ORCH_RATELIMIT_PROBE_INTERVAL_S", 1.0),
            key_prefix=env.get("ORCH_RATELIMIT_KEY_PREFIX", "orch:rl:") or "orch:rl:",
            jitter_s=_float(env, "ORCH_RATELIMIT_JITTER_S", 1.0),
            envoy_auth=envoy_auth,  # type: ignore[arg-type]
            envoy_port=int(_float(env, "ORCH_RATELIMIT_ENVOY_GRPC_PORT", DEFAULT_ENVOY_PORT)),
            allow_request_clock=env.get("ORCH_RATELIMIT_ALLOW_REQUEST_CLOCK", "").strip().lower()
            in ("1", "true", "yes"),
            default_bucket=default_bucket,
            bucket_metrics_interval_s=env_number(
                env,
                "ORCH_RATELIMIT_BUCKET_METRICS_INTERVAL_S",
                DEFAULT_BUCKET_METRICS_INTERVAL_S,
                0.05,
                3600,
            ),
        )


def _bad(name: str, value: str, expected: str) -> ConfigError:
    return ConfigError(f"{name}={value!r} is invalid: must be {expected}")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return env_number(env, name, default, 0, 1e12)
