"""Builds the leases service's GrpcService from configuration (used by __main__ and tests)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from orchestrator_core import Clock
from orchestrator_grpckit import Background, Dependency, GrpcService, ServiceConfig, service_of
from orchestrator_leases._completer import Completer
from orchestrator_leases._dispatcher import Dispatcher
from orchestrator_leases._queue_metrics import QueueGauges
from orchestrator_leases._ratelimit import LeaseLimiter
from orchestrator_leases._servicer import (
    METHOD_SCOPES,
    SERVICE_NAME,
    TENANT_SPANNING_METHODS,
    LeaseServicer,
)
from orchestrator_leases._settings import LeaseSettings
from orchestrator_leases._watchdog import Watchdog
from orchestrator_pg import Database, LeaseLedger, MetricsReader, ReadyListener
from orchestrator_redis import BucketStore
from stella.orchestrator.v1 import leases_pb2_grpc


@dataclass(frozen=True)
class LeasesApp:
    """The parts of a running leases service, for tests and diagnostics."""

    service: GrpcService
    servicer: LeaseServicer
    dispatcher: Dispatcher
    completer: Completer
    watchdog: Watchdog
    listener: ReadyListener
    settings: LeaseSettings
    limiter: LeaseLimiter | None = None
    queue_gauges: QueueGauges | None = None


@asynccontextmanager
async def build_app(
    config: ServiceConfig,
    *,
    clock: Clock | None = None,
    settings: LeaseSettings | None = None,
    watchdog_lock_key: int | None = None,
    queue_metrics_lock_key: int | None = None,
    bucket_store: BucketStore | None = None,
) -> AsyncIterator[LeasesApp]:
    """Like :func:`build_service`, exposing the components too.

    With ``settings.ratelimit`` the bucket store is ``bucket_store`` when given (tests: own
    prefix, policies or Redis), else one on ``config.redis_url`` with the settings' prefix.
    """
    settings = settings or LeaseSettings.from_env()
    owned: BucketStore | None = None
    if settings.ratelimit and bucket_store is None:
        bucket_store = owned = BucketStore.connect(
            config.redis_url,
            timeout_s=settings.ratelimit_redis_timeout_s,
            prefix=settings.ratelimit_key_prefix,
            default=settings.ratelimit_default_bucket,
        )
    db = Database(config.database_url, clock=clock, max_size=config.db_pool_max)
    # Injected (tests) or else PostgreSQL's: every component reads the same clock.
    clock = db.clock
    await db.open()
    try:
        ledger = LeaseLedger(db)
        reader = MetricsReader(db)
        limiter: LeaseLimiter | None = None
        background: list[Background] = []
        if settings.ratelimit and bucket_store is not None:
            limiter = LeaseLimiter(
                bucket_store,
                ledger,
                failure_policy=settings.ratelimit_failure,
                jitter_s=settings.ratelimit_jitter_s,
                clock=clock,
            )
            background.append(("ratelimit-feedback", limiter.run))
        completer = Completer(
            ledger,
            lease_ttl_s=settings.lease_ttl_s,
            flush_ms=settings.completer_flush_ms,
            limiter=limiter,
        )
        dispatcher = Dispatcher(
            ledger,
            lease_ttl_s=settings.lease_ttl_s,
            claim_batch=settings.claim_batch,
            limiter=limiter,
        )
        completer.on_leases_ended = dispatcher.leases_ended
        listener = ReadyListener(config.database_url)
        listener.subscribe(dispatcher.on_ready)
        watchdog = Watchdog(
            config.database_url,
            ledger,
            interval_s=settings.watchdog_interval_s,
            clock=clock,
            lock_key=watchdog_lock_key,
        )
        queue_gauges = QueueGauges(
            config.database_url,
            reader,
            interval_s=settings.queue_metrics_interval_s,
            lock_key=queue_metrics_lock_key,
        )
        servicer = LeaseServicer(ledger, completer, dispatcher, listener, settings)
        service = GrpcService(
            config,
            [(leases_pb2_grpc.add_LeaseServiceServicer_to_server, servicer, SERVICE_NAME)],
            dependencies=[Dependency("postgresql", db.ping)],
            background=[
                ("ready-listener", listener.run),
                ("dispatcher", dispatcher.run),
                ("completer", completer.run),
                ("watchdog", watchdog.run),
                ("queue-metrics", queue_gauges.run),
                *background,
            ],
            method_scopes=METHOD_SCOPES,
            tenant_spanning=TENANT_SPANNING_METHODS,
            # A rolling update: workers finish and deliver what they hold within the grace
            # period and reconnect to another replica, instead of having handlers cut.
            on_stopping=[functools.partial(dispatcher.drain_sessions, "shutdown")],
        )
        yield LeasesApp(
            service,
            servicer,
            dispatcher,
            completer,
            watchdog,
            listener,
            settings,
            limiter,
            queue_gauges,
        )
    finally:
        await db.close()
        if owned is not None:
            await owned.aclose()


build_service = service_of(build_app)
"""The leases service with an open database pool; the pool closes on exit.

Env (see :mod:`orchestrator_leases._settings`): ``ORCH_LEASE_TTL_S`` (default 30),
``ORCH_CLAIM_BATCH`` (100), ``ORCH_WATCHDOG_INTERVAL_S`` (1),
``ORCH_COMPLETER_FLUSH_MS`` (2), ``ORCH_LEASES_RATELIMIT`` (on) and the rate-limit
variables; ``settings`` overrides them. Rate limiting uses Redis at ``ORCH_REDIS_URL``."""
