"""Builds the ratelimit service's GrpcService from configuration (used by __main__ and tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from envoy.service.ratelimit.v3 import rls_pb2_grpc

from orchestrator_core import Clock
from orchestrator_grpckit import GrpcService, ServiceConfig, service_of
from orchestrator_pg import Database, TenantStore, ThrottleStore
from orchestrator_ratelimit._bucket_metrics import BucketGauges
from orchestrator_ratelimit._envoy import (
    ENVOY_SERVICE_NAME,
    METHOD,
    EnvoyListener,
    EnvoyRateLimitServicer,
)
from orchestrator_ratelimit._limiter import Backend, Limiter
from orchestrator_ratelimit._servicer import METHOD_SCOPES, SERVICE_NAME, RateLimitServicer
from orchestrator_ratelimit._settings import RatelimitSettings
from orchestrator_redis import BucketStore
from stella.orchestrator.v1 import ratelimit_pb2_grpc

# The Envoy method on the main port needs a token with orch:work (it takes tokens).
ALL_METHOD_SCOPES: dict[str, str] = {**METHOD_SCOPES, METHOD: "orch:work"}


@dataclass(frozen=True)
class RatelimitApp:
    """The parts of a running ratelimit service, for tests and diagnostics."""

    service: GrpcService
    servicer: RateLimitServicer
    backend: Backend
    limiter: Limiter
    settings: RatelimitSettings
    envoy_listener: EnvoyListener | None
    bucket_gauges: BucketGauges

    @property
    def envoy_port(self) -> int | None:
        """Port of the token-less Envoy listener (None with ``ENVOY_AUTH=token``)."""
        return self.envoy_listener.port if self.envoy_listener is not None else None


@asynccontextmanager
async def build_app(
    config: ServiceConfig,
    *,
    clock: Clock | None = None,
    redis_url: str | None = None,
    settings: RatelimitSettings | None = None,
    bucket_metrics_lock_key: int | None = None,
) -> AsyncIterator[RatelimitApp]:
    """Like :func:`build_service`, exposing the components too (``bucket_metrics_lock_key``:
    another lock for the bucket snapshot, for tests beside a running stack)."""
    settings = settings or RatelimitSettings.from_env()
    store = BucketStore.connect(
        redis_url or config.redis_url,
        timeout_s=settings.redis_timeout_s,
        prefix=settings.key_prefix,
        default=settings.default_bucket,
    )
    db = Database(config.database_url, clock=clock, max_size=config.db_pool_max)
    await db.open()
    listener: EnvoyListener | None = None
    try:
        backend = Backend(
            store,
            probe_interval_s=settings.probe_interval_s,
            health_names=(SERVICE_NAME, ENVOY_SERVICE_NAME),
        )
        repo = ThrottleStore(db)
        limiter = Limiter(backend, repo, failure_policy=settings.redis_failure)
        servicer = RateLimitServicer(limiter, repo, settings, clock=clock)
        services = [
            (ratelimit_pb2_grpc.add_RateLimitServiceServicer_to_server, servicer, SERVICE_NAME),
            (
                rls_pb2_grpc.add_RateLimitServiceServicer_to_server,
                EnvoyRateLimitServicer(limiter, authenticated=True, clock=clock),
                ENVOY_SERVICE_NAME,
            ),
        ]
        bucket_gauges = BucketGauges(
            config.database_url,
            TenantStore(db),
            store,
            interval_s=settings.bucket_metrics_interval_s,
            clock=clock,
            lock_key=bucket_metrics_lock_key,
        )
        service = GrpcService(
            config,
            services,
            background=[
                ("redis-probe", backend.probe_forever),
                ("bucket-metrics", bucket_gauges.run),
            ],
            method_scopes=ALL_METHOD_SCOPES,
        )
        backend.health = service.health
        if settings.envoy_auth == "none":
            listener = EnvoyListener(
                EnvoyRateLimitServicer(limiter, authenticated=False, clock=clock),
                config.bind_host,
                settings.envoy_port,
            )
            await listener.start()
        yield RatelimitApp(service, servicer, backend, limiter, settings, listener, bucket_gauges)
    finally:
        if listener is not None:
            await listener.stop()
        await db.close()
        await store.aclose()


build_service = service_of(build_app)
"""The ratelimit service with an open database pool and Redis client; both close on exit.

Env: see :mod:`orchestrator_ratelimit._settings` (``ORCH_RATELIMIT_*``) plus the common
``ORCH_REDIS_URL`` / ``ORCH_DATABASE_URL``; ``redis_url`` and ``settings`` override them."""
