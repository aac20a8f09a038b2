"""orchestrator_ratelimit: the rate-limit gRPC service (docs/architecture.md §4).

Design note
-----------
* Token buckets per ``{tenant, source host}`` live in Redis (``orchestrator_redis``);
  ``Acquire`` answers a batch with one Redis round trip after checking blackout windows
  (PostgreSQL, cached per tenant for 1 s, evaluated in UTC by :mod:`._blackout`).
* Adaptive throttling: ``ReportThrottle`` pauses a bucket until the upstream's Retry-After
  (plus jitter) and lowers its refill rate; operators configure buckets and pin overrides.
  Every rate change writes a ``throttles`` row whose outbox trigger emits a
  ``throttle.changed`` event in the same transaction.
* Redis failure policy ``ORCH_RATELIMIT_REDIS_FAILURE`` (default ``closed``): Acquire denies
  with ``backend_unavailable`` (retry after 1 s) while Redis is down; health of the service
  is NOT_SERVING and ``orch_ratelimit_backend_up`` 0 until the 1 s probe sees Redis again.
* Envoy's ``ShouldRateLimit`` answers from the same buckets (:mod:`._envoy`).
"""

from orchestrator_core.blackouts import Weekly, Window, active_until, blackout_until
from orchestrator_ratelimit._app import RatelimitApp, build_app, build_service
from orchestrator_ratelimit._envoy import ENVOY_SERVICE_NAME, EnvoyRateLimitServicer
from orchestrator_ratelimit._servicer import METHOD_SCOPES, SERVICE_NAME, RateLimitServicer
from orchestrator_ratelimit._settings import RatelimitSettings

__all__ = [
    "ENVOY_SERVICE_NAME",
    "METHOD_SCOPES",
    "SERVICE_NAME",
    "EnvoyRateLimitServicer",
    "RateLimitServicer",
    "RatelimitApp",
    "RatelimitSettings",
    "Weekly",
    "Window",
    "active_until",
    "blackout_until",
    "build_app",
    "build_service",
]
