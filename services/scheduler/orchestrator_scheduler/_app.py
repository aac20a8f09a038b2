"""Builds the scheduler's GrpcService from configuration (used by __main__ and tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orchestrator_core import Clock
from orchestrator_grpckit import Dependency, GrpcService, ServiceConfig
from orchestrator_pg import (
    Database,
    EventHorizon,
    EventPartitionMaintainer,
    EventReader,
    Stores,
)
from orchestrator_redis import BucketStore
from orchestrator_scheduler import _webhooks_api as webhooks_api
from orchestrator_scheduler._events import (
    EVENTS_METHOD_SCOPES,
    EVENTS_SERVICE_NAME,
    EventStreamServicer,
)
from orchestrator_scheduler._firing import ScheduleFirer
from orchestrator_scheduler._incidents import IncidentWatcher
from orchestrator_scheduler._servicer import METHOD_SCOPES, SERVICE_NAME, SchedulerServicer
from orchestrator_scheduler._settings import SchedulerSettings
from orchestrator_scheduler._webhooks import WebhookDispatcher
from stella.orchestrator.v1 import events_pb2_grpc, scheduler_pb2_grpc, webhooks_pb2_grpc


@asynccontextmanager
async def build_service(
    config: ServiceConfig, *, clock: Clock | None = None, schedule_firing: bool | None = None
) -> AsyncIterator[GrpcService]:
    """The scheduler service with an open database pool; the pool closes on exit.

    Settings: :class:`~orchestrator_scheduler._settings.SchedulerSettings` (read from the
    environment; a malformed value raises ``ConfigError``); ``schedule_firing`` overrides
    ``ORCH_SCHEDULES_FIRING`` (one replica fires at a time).

    Besides SchedulerService (which includes the operator RPCs: dead letters, incidents,
    artifacts, overview) it serves EventStreamService (the event history, live) and
    WebhookService (subscriptions and their delivery log; the dispatcher runs here too).
    """
    settings = SchedulerSettings.from_env()
    db = Database(config.database_url, clock=clock, max_size=config.db_pool_max)
    # Injected (tests) or else PostgreSQL's: every component reads the same clock.
    clock = db.clock
    await db.open()
    # Redis only feeds backfill estimates (the source's bucket rate): short timeouts, one try.
    bucket_store = BucketStore.connect(
        config.redis_url, timeout_s=0.5, prefix=settings.ratelimit_key_prefix
    )
    try:
        firing = settings.schedule_firing if schedule_firing is None else schedule_firing
        max_payload = settings.max_payload_bytes
        stores = Stores.over(db)
        servicer = SchedulerServicer(
            stores,
            max_payload_bytes=max_payload,
            clock=clock,
            bucket_store=bucket_store,
        )
        firer = ScheduleFirer(
            stores, config.database_url, clock=clock, max_payload_bytes=max_payload
        )
        maintainer = EventPartitionMaintainer(
            config.database_url,
            retention_days=settings.events_retention_days,
            clock=clock,
        )
        horizon = EventHorizon(config.database_url)
        incidents = IncidentWatcher(
            stores.incidents,
            horizon,
            config.database_url,
            clock=clock,
            policy=settings.incident_policy,
        )
        webhooks = WebhookDispatcher(
            stores.webhooks,
            horizon,
            config.database_url,
            settings=settings.webhooks,
            clock=clock,
        )
        events = EventStreamServicer(
            EventReader(db),
            horizon,
            keepalive_s=settings.stream_keepalive_s,
        )
        service = GrpcService(
            config,
            [
                (scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server, servicer, SERVICE_NAME),
                (
                    events_pb2_grpc.add_EventStreamServiceServicer_to_server,
                    events,
                    EVENTS_SERVICE_NAME,
                ),
                (
                    webhooks_pb2_grpc.add_WebhookServiceServicer_to_server,
                    webhooks_api.WebhookServicer(
                        stores.webhooks, rotation_grace=settings.webhooks.rotation_grace
                    ),
                    webhooks_api.SERVICE_NAME,
                ),
            ],
            dependencies=[Dependency("postgresql", db.ping)],
            background=[
                ("event-partitions", maintainer.run_forever),
                ("event-horizon", horizon.run),
                ("incidents", incidents.run_forever),
                *([("webhooks", webhooks.run_forever)] if settings.webhooks.enabled else []),
                *([("schedule-firing", firer.run_forever)] if firing else []),
            ],
            method_scopes={**METHOD_SCOPES, **EVENTS_METHOD_SCOPES, **webhooks_api.METHOD_SCOPES},
        )
        yield service
    finally:
        await db.close()
        await bucket_store.aclose()
