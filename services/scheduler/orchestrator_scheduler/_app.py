"""Builds the scheduler's GrpcService from configuration (used by __main__ and tests)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orchestrator_core import Clock
from orchestrator_grpckit import Dependency, GrpcService, ServiceConfig
from orchestrator_pg import (
    Database,
    EventHorizon,
    EventPartitionMaintainer,
    EventReader,
    QuotaLedger,
    ScheduleLedger,
)
from orchestrator_redis import DEFAULT_PREFIX, BucketStore
from orchestrator_scheduler._events import (
    EVENTS_METHOD_SCOPES,
    EVENTS_SERVICE_NAME,
    KEEPALIVE_S,
    EventStreamServicer,
)
from orchestrator_scheduler._firing import ScheduleFirer
from orchestrator_scheduler._servicer import METHOD_SCOPES, SERVICE_NAME, SchedulerServicer
from orchestrator_scheduler._validate import MAX_PAYLOAD_BYTES
from stella.orchestrator.v1 import events_pb2_grpc, scheduler_pb2_grpc


@asynccontextmanager
async def build_service(
    config: ServiceConfig, *, clock: Clock | None = None, schedule_firing: bool | None = None
) -> AsyncIterator[GrpcService]:
    """The scheduler service with an open database pool; the pool closes on exit.

    Env: ``ORCH_MAX_PAYLOAD_BYTES`` (default 262144), ``ORCH_EVENTS_RETENTION_DAYS``
    (default 0 = keep every event partition), ``ORCH_SCHEDULES_FIRING`` (``on``: this
    replica takes part in firing schedules; one replica fires at a time);
    ``schedule_firing`` overrides it; ``ORCH_STREAM_KEEPALIVE_S`` (default 15: idle time
    before a live event stream sends a keep-alive).

    Besides SchedulerService (which includes the operator RPCs: dead letters, incidents,
    artifacts, overview) it serves EventStreamService (the event history, live).
    """
    db = Database(config.database_url, clock=clock)
    # Injected (tests) or else PostgreSQL's: every component reads the same clock.
    clock = db.clock
    await db.open()
    # Redis only feeds backfill estimates (the source's bucket rate): short timeouts, one try.
    bucket_store = BucketStore.connect(
        config.redis_url,
        timeout_s=0.5,
        prefix=os.environ.get("ORCH_RATELIMIT_KEY_PREFIX", "") or DEFAULT_PREFIX,
    )
    try:
        firing = schedule_firing
        if firing is None:
            firing = os.environ.get("ORCH_SCHEDULES_FIRING", "on").strip().lower() != "off"
        max_payload = int(os.environ.get("ORCH_MAX_PAYLOAD_BYTES", MAX_PAYLOAD_BYTES))
        schedule_ledger = ScheduleLedger(db)
        servicer = SchedulerServicer(
            QuotaLedger(db),
            max_payload_bytes=max_payload,
            schedule_ledger=schedule_ledger,
            clock=clock,
            bucket_store=bucket_store,
        )
        firer = ScheduleFirer(
            schedule_ledger, config.database_url, clock=clock, max_payload_bytes=max_payload
        )
        maintainer = EventPartitionMaintainer(
            config.database_url,
            retention_days=int(os.environ.get("ORCH_EVENTS_RETENTION_DAYS", "0")),
            clock=clock,
        )
        horizon = EventHorizon(config.database_url)
        events = EventStreamServicer(
            EventReader(db),
            horizon,
            keepalive_s=float(os.environ.get("ORCH_STREAM_KEEPALIVE_S", KEEPALIVE_S)),
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
            ],
            dependencies=[Dependency("postgresql", db.ping)],
            background=[
                ("event-partitions", maintainer.run_forever),
                ("event-horizon", horizon.run),
                *([("schedule-firing", firer.run_forever)] if firing else []),
            ],
            method_scopes={**METHOD_SCOPES, **EVENTS_METHOD_SCOPES},
        )
        yield service
    finally:
        await db.close()
        await bucket_store.aclose()
