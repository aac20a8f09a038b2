"""Per-caller REST rate limits, shared by every gateway replica through Redis.

Each caller (tenant + token subject; the client address without a valid token) has one
token bucket of ``rate_burst`` tokens refilled at ``rate_per_s``, kept in Redis by the bucket
scripts of ``orchestrator_redis`` (``BucketStore``, under its own key prefix
``ORCH_GATEWAY_RATELIMIT_KEY_PREFIX``, default ``orch:gw:``): every replica takes from the same
bucket, so N replicas allow the caller the configured rate, not N times it. A bucket is keyed
``{tenant}`` + subject, so a tenant's callers share one cluster slot; an idle bucket expires
in Redis after a day. The refill uses each replica's own clock (the scripts never read Redis
time); a bucket never runs backwards, so a replica whose clock is ``s`` seconds ahead can add
at most ``rate_per_s * s`` tokens once, never a steady surplus.

Every ``/api/`` answer carries ``X-RateLimit-Limit`` (burst), ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (seconds until the bucket is full again); an empty bucket answers 429
problem+json with ``Retry-After`` (a WebSocket handshake is closed with 1013).

Redis down: **fail open**. A request whose bucket cannot be read within
``ORCH_GATEWAY_REDIS_TIMEOUT_S`` passes without ``X-RateLimit-*`` headers; the gateway logs
the outage once (and its end), sets ``orchestrator_gateway_ratelimit_redis_up`` to 0, counts
every request let through in ``orchestrator_gateway_ratelimit_bypassed_total`` and asks Redis
again only after ``REDIS_RETRY_S``, so an outage does not add a timeout to every request. Why
open: this limit shields the services from one noisy caller, and they keep their own
protections (submit backpressure, quotas, leasing rate limits); refusing every REST call while
Redis is away would turn a cache outage into an API and Console outage during an incident.
"""

from __future__ import annotations

import logging
import math
import time

from prometheus_client import Counter, Gauge

from orchestrator_gateway._middleware import (
    API_PREFIX,
    ASGIApp,
    CallerId,
    Message,
    Receive,
    Scope,
    Send,
    identify,
    send_problem,
)
from orchestrator_grpckit import TokenVerifier
from orchestrator_redis import BucketKey, BucketStore, Grant, RedisUnavailable

# After Redis failed, requests skip it for this long (one request then probes it again).
REDIS_RETRY_S = 1.0
# The bucket "tenant" of callers without a valid token: one slot for all of them.
ANONYMOUS_TENANT = "-"

_log = logging.getLogger("orchestrator_gateway.ratelimit")

REDIS_UP = Gauge(
    "orchestrator_gateway_ratelimit_redis_up",
    "1 while the per-caller rate limit reaches Redis, 0 while it fails open.",
)
BYPASSED = Counter(
    "orchestrator_gateway_ratelimit_bypassed_total",
    "REST requests let through unlimited because Redis was unreachable (fail open).",
)


def bucket_key(caller: CallerId) -> BucketKey:
    """The caller's bucket: its tenant (braces, which delimit the Redis hash tag, replaced)
    and subject."""
    tenant = caller.tenant.replace("{", "(").replace("}", ")") or ANONYMOUS_TENANT
    return BucketKey(tenant=tenant, host=caller.subject)


class RateLimitMiddleware:
    """Token bucket per caller on ``/api/`` (HTTP and WebSocket handshakes), in Redis.

    Args:
        app: The wrapped application.
        verifier: Identifies the caller.
        buckets: The Redis bucket store (its default config is the per-caller bucket).
        rate_per_s: Refill rate (for the headers and messages).
        burst: Bucket capacity.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: TokenVerifier,
        buckets: BucketStore,
        rate_per_s: float,
        burst: int,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.buckets = buckets
        self.rate = rate_per_s
        self.burst = burst
        self._skip_until = 0.0
        self._down = False
        REDIS_UP.set(1)

    async def _take(self, key: BucketKey) -> Grant | None:
        """One token, or ``None`` when Redis is unreachable (fail open)."""
        if time.monotonic() < self._skip_until:
            return None
        try:
            (grant,) = await self.buckets.acquire([(key, 1)], now=time.time(), whole=[True])
        except RedisUnavailable as exc:
            self._skip_until = time.monotonic() + REDIS_RETRY_S
            if not self._down:
                self._down = True
                REDIS_UP.set(0)
                _log.warning("rate limits fail open: Redis is unreachable (%s)", exc)
            return None
        if self._down:
            self._down = False
            REDIS_UP.set(1)
            _log.info("rate limits apply again: Redis answers")
        return grant

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        grant = await self._take(bucket_key(identify(self.verifier, scope)))
        if grant is None:
            BYPASSED.inc()
            await self.app(scope, receive, send)
            return
        remaining = max(0.0, grant.remaining)
        reset = math.ceil((self.burst - remaining) / self.rate)
        if not grant.granted:
            wait = grant.retry_after_s
            retry = max(1, math.ceil(wait))
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1013, "reason": "rate limited"})
                return
            await send_problem(
                send,
                429,
                f"rate limit of {self.rate:g} requests/s (burst {self.burst}) exceeded; "
                f"retry in {retry} s",
                scope["path"],
                slug="rate-limited",
                reason="RATE_LIMITED",
                retry_after_s=wait,
                headers={
                    "Retry-After": str(retry),
                    "X-RateLimit-Limit": str(self.burst),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset),
                },
            )
            return
        limit_headers = [
            (b"x-ratelimit-limit", str(self.burst).encode()),
            (b"x-ratelimit-remaining", str(math.floor(remaining)).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *limit_headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
