"""Builds the leases service's GrpcService from configuration (used by __main__ and tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from orchestrator_core import Clock
from orchestrator_grpckit import GrpcService, ServiceConfig
from orchestrator_leases._completer import Completer
from orchestrator_leases._dispatcher import Dispatcher
from orchestrator_leases._notify import ReadyListener
from orchestrator_leases._servicer import METHOD_SCOPES, SERVICE_NAME, LeaseServicer
from orchestrator_leases._settings import LeaseSettings
from orchestrator_leases._watchdog import WATCHDOG_LOCK_KEY, Watchdog
from orchestrator_pg import Database, LeaseLedger
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


@asynccontextmanager
async def build_app(
    config: ServiceConfig,
    *,
    clock: Clock | None = None,
    settings: LeaseSettings | None = None,
    watchdog_lock_key: int = WATCHDOG_LOCK_KEY,
) -> AsyncIterator[LeasesApp]:
    """Like :func:`build_service`, exposing the components too."""
    settings = settings or LeaseSettings.from_env()
    db = Database(config.database_url, clock=clock)
    await db.open()
    try:
        ledger = LeaseLedger(db)
        completer = Completer(
            ledger, lease_ttl_s=settings.lease_ttl_s, flush_ms=settings.completer_flush_ms
        )
        dispatcher = Dispatcher(
            ledger, lease_ttl_s=settings.lease_ttl_s, claim_batch=settings.claim_batch
        )
        listener = ReadyListener(config.database_url)
        listener.subscribe(dispatcher.on_ready)
        watchdog = Watchdog(
            config.database_url,
            ledger,
            interval_s=settings.watchdog_interval_s,
            clock=clock,
            lock_key=watchdog_lock_key,
        )
        servicer = LeaseServicer(ledger, completer, dispatcher, listener, settings)
        service = GrpcService(
            config,
            [(leases_pb2_grpc.add_LeaseServiceServicer_to_server, servicer, SERVICE_NAME)],
            background=[
                ("ready-listener", listener.run),
                ("dispatcher", dispatcher.run),
                ("completer", completer.run),
                ("watchdog", watchdog.run),
            ],
            method_scopes=METHOD_SCOPES,
        )
        yield LeasesApp(service, servicer, dispatcher, completer, watchdog, listener, settings)
    finally:
        await db.close()


@asynccontextmanager
async def build_service(
    config: ServiceConfig,
    *,
    clock: Clock | None = None,
    settings: LeaseSettings | None = None,
) -> AsyncIterator[GrpcService]:
    """The leases service with an open database pool; the pool closes on exit.

    Env (see :mod:`orchestrator_leases._settings`): ``ORCH_LEASE_TTL_S`` (default 30),
    ``ORCH_CLAIM_BATCH`` (100), ``ORCH_WATCHDOG_INTERVAL_S`` (1),
    ``ORCH_COMPLETER_FLUSH_MS`` (2); ``settings`` overrides them.
    """
    async with build_app(config, clock=clock, settings=settings) as app:
        yield app.service
