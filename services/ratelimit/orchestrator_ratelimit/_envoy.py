"""Envoy's ``envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`` on the same buckets.

Mapping: each descriptor names one bucket — its ``tenant`` entry (else the request's
``domain``) and its ``host`` entry (absent = the tenant's default bucket). Hits per
descriptor: the descriptor's ``hits_addend``, else the request's, else 1. All descriptors
are answered with one Redis round trip (blackouts apply tenant-wide only: Envoy knows no
source ids). ``overall_code`` is OVER_LIMIT when any descriptor is; the response carries
per-descriptor statuses and ``x-ratelimit-limit`` / ``x-ratelimit-remaining`` /
``x-ratelimit-reset`` headers of the most constrained descriptor.

Auth: Envoy sends no bearer token. ``ORCH_RATELIMIT_ENVOY_AUTH=none`` (default) serves the
method without a token on a separate listener (``ORCH_RATELIMIT_ENVOY_GRPC_PORT``, default
8081) meant for a trusted network only (a sidecar or a NetworkPolicy-restricted port), the
tenant coming from the descriptors. On the main port the method always needs a token with
``orch:work`` and the descriptors' tenant must be the token's.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from google.protobuf import duration_pb2

from orchestrator_core import (
    Clock,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    SystemClock,
)
from orchestrator_grpckit import SERVER_OPTIONS, ErrorInterceptor, current_principal
from orchestrator_ratelimit._limiter import Decision, Limiter, Want
from orchestrator_ratelimit._validate import HOST_RE
from orchestrator_redis import BucketKey, BucketState, InvalidBucketArgument, RedisUnavailable

ENVOY_SERVICE_NAME = "envoy.service.ratelimit.v3.RateLimitService"
METHOD = f"/{ENVOY_SERVICE_NAME}/ShouldRateLimit"
MAX_DESCRIPTORS = 64

_Response = Any
_UNITS: tuple[tuple[int, float], ...] = (
    (rls_pb2.RateLimitResponse.RateLimit.SECOND, 1.0),
    (rls_pb2.RateLimitResponse.RateLimit.MINUTE, 60.0),
    (rls_pb2.RateLimitResponse.RateLimit.HOUR, 3600.0),
    (rls_pb2.RateLimitResponse.RateLimit.DAY, 86400.0),
)


def _limit(name: str, rate_per_s: float) -> Any:
    """The refill rate as Envoy's ``requests_per_unit`` + ``unit`` (smallest exact-enough unit)."""
    for unit, seconds in _UNITS:
        if rate_per_s * seconds >= 1 or unit == rls_pb2.RateLimitResponse.RateLimit.DAY:
            return rls_pb2.RateLimitResponse.RateLimit(
                name=name, requests_per_unit=round(rate_per_s * seconds), unit=unit
            )
    raise AssertionError("unreachable")


def _duration(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(int(max(seconds, 0.0) * 1e9))
    return out


class EnvoyRateLimitServicer(rls_pb2_grpc.RateLimitServiceServicer):
    """ShouldRateLimit over the rate-limit buckets.

    Args:
        limiter: The decision core shared with Acquire.
        authenticated: True on the main port (token required, tenant from the token);
            False on the trusted-network Envoy listener (tenant from the descriptors).
    """

    def __init__(
        self, limiter: Limiter, *, authenticated: bool, clock: Clock | None = None
    ) -> None:
        self.limiter = limiter
        self.authenticated = authenticated
        self.clock: Clock = clock or SystemClock()

    async def ShouldRateLimit(self, request: Any, context: Any) -> _Response:
        return await self._decide(request)

    def _keys(self, request: Any) -> list[tuple[BucketKey, int]]:
        violations: list[FieldViolation] = []
        principal_tenant = current_principal().tenant if self.authenticated else None
        if not request.descriptors:
            violations.append(FieldViolation("descriptors", "must hold at least one descriptor"))
        if len(request.descriptors) > MAX_DESCRIPTORS:
            violations.append(FieldViolation("descriptors", f"at most {MAX_DESCRIPTORS}"))
        keys: list[tuple[BucketKey, int]] = []
        for i, descriptor in enumerate(request.descriptors[:MAX_DESCRIPTORS]):
            entries = {e.key: e.value for e in descriptor.entries}
            host = entries.get("host", "")
            if principal_tenant is not None:
                tenant = entries.get("tenant") or principal_tenant
                if tenant != principal_tenant:
                    raise PermissionDenied(
                        f"descriptors[{i}] tenant {tenant!r} is not the caller's tenant "
                        f"{principal_tenant!r}"
                    )
            else:
                tenant = entries.get("tenant") or request.domain
            if host and not HOST_RE.match(host):
                violations.append(FieldViolation(f"descriptors[{i}].host", "not a host name"))
                continue
            hits = request.hits_addend or 1
            if descriptor.HasField("hits_addend"):
                hits = descriptor.hits_addend.value or hits
            try:
                keys.append((BucketKey(tenant, host), int(hits)))
            except InvalidBucketArgument as exc:
                violations.append(FieldViolation(f"descriptors[{i}].{exc.field}", str(exc)))
        if violations:
            raise InvalidArgument("invalid rate limit request", violations)
        return keys

    async def _states(
        self, keys: Sequence[BucketKey], now_s: float
    ) -> dict[BucketKey, BucketState]:
        store = self.limiter.backend.store
        unique = list(dict.fromkeys(keys))
        try:
            states = await asyncio.gather(*(store.state(k, now=now_s) for k in unique))
        except RedisUnavailable:
            return {}
        return dict(zip(unique, states, strict=True))

    async def _decide(self, request: Any) -> _Response:
        keys = self._keys(request)
        now = self.clock.now()
        decisions = await self.limiter.decide([Want(k, n) for k, n in keys], now)
        states = await self._states([k for k, _ in keys], now.timestamp())
        response = rls_pb2.RateLimitResponse(overall_code=rls_pb2.RateLimitResponse.OK)
        worst: tuple[float, int, float] | None = None  # remaining, limit, reset
        for decision in decisions:
            status, header = self._status(decision, states.get(decision.key))
            response.statuses.append(status)
            if status.code == rls_pb2.RateLimitResponse.OVER_LIMIT:
                response.overall_code = rls_pb2.RateLimitResponse.OVER_LIMIT
            if worst is None or header[0] < worst[0]:
                worst = header
        if worst is not None:
            remaining, limit, reset = worst
            for name, value in (
                ("x-ratelimit-limit", str(limit)),
                ("x-ratelimit-remaining", str(max(math.floor(remaining), 0))),
                ("x-ratelimit-reset", str(math.ceil(reset))),
            ):
                response.response_headers_to_add.append(base_pb2.HeaderValue(key=name, value=value))
        return response

    @staticmethod
    def _status(
        decision: Decision, state: BucketState | None
    ) -> tuple[Any, tuple[float, int, float]]:
        capacity = int(state.capacity) if state is not None else 0
        rate = state.effective_refill_per_s if state is not None else 0.0
        remaining = decision.remaining if decision.granted else 0.0
        if decision.granted:
            reset = (capacity - decision.remaining) / rate if rate > 0 else 0.0
        else:
            reset = decision.retry_after_s
        code = (
            rls_pb2.RateLimitResponse.OK
            if decision.granted
            else rls_pb2.RateLimitResponse.OVER_LIMIT
        )
        status = rls_pb2.RateLimitResponse.DescriptorStatus(
            code=code,
            current_limit=_limit(f"{decision.key.tenant}/{decision.key.host}", rate),
            limit_remaining=max(math.floor(remaining), 0),
            duration_until_reset=_duration(reset),
        )
        return status, (remaining, capacity, max(reset, 0.0))


class EnvoyListener:
    """A token-less gRPC server serving only ShouldRateLimit (trusted network only)."""

    def __init__(self, servicer: EnvoyRateLimitServicer, host: str, port: int) -> None:
        self._servicer = servicer
        self._address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._server: grpc.aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> None:
        # No token here, but errors still go through the one error interceptor: a domain
        # error gets its status and details, anything else INTERNAL without its message.
        server = grpc.aio.server(options=list(SERVER_OPTIONS), interceptors=[ErrorInterceptor()])
        rls_pb2_grpc.add_RateLimitServiceServicer_to_server(self._servicer, server)
        self.port = server.add_insecure_port(self._address)
        await server.start()
        self._server = server
        logging.getLogger("orchestrator_ratelimit").warning(
            "Envoy ShouldRateLimit served WITHOUT authentication on %s (port %d): expose it to "
            "a trusted network only, or set ORCH_RATELIMIT_ENVOY_AUTH=token",
            self._address,
            self.port,
            extra={"envoy_port": self.port},
        )

    async def stop(self, grace_s: float = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None
