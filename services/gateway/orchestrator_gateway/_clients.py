"""gRPC channels and stubs of the services the gateway calls (the only way it reaches them).

Each upstream target may name several replicas (a comma list or a ``dns:///`` name that
resolves to many); the channel balances its calls over them ``round_robin`` and skips those
that are down (:mod:`stella_orchestrator.targets`, shared with the worker SDK).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from orchestrator_gateway._auth import Caller
from orchestrator_gateway._settings import GatewaySettings
from stella.orchestrator.v1 import (
    audit_pb2_grpc,
    events_pb2_grpc,
    ratelimit_pb2_grpc,
    scheduler_pb2_grpc,
    webhooks_pb2_grpc,
)
from stella_orchestrator.targets import channel_options, channel_target

T = TypeVar("T")

# A target that resolves to several addresses (a comma list from `make up REPLICAS=N`, a
# headless Service in Kubernetes: deploy/k8s) gets calls spread over all of them
# (channel_options adds round_robin); grpc's default, pick_first, would send every call of
# this replica to one upstream until the connection is recycled.
CHANNEL_OPTIONS = tuple(
    channel_options(
        (
            ("grpc.max_receive_message_length", 16 * 1024 * 1024),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
        )
    )
)


def _channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(channel_target(target), options=CHANNEL_OPTIONS)


class Clients:
    """One channel per service, opened lazily by grpc and closed by :meth:`close`."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.timeout_s = settings.grpc_timeout_s
        self._scheduler = _channel(settings.scheduler_target)
        self._ratelimit = _channel(settings.ratelimit_target)
        self._audit = _channel(settings.audit_target)
        self.scheduler = scheduler_pb2_grpc.SchedulerServiceStub(self._scheduler)
        self.events = events_pb2_grpc.EventStreamServiceStub(self._scheduler)
        self.webhooks = webhooks_pb2_grpc.WebhookServiceStub(self._scheduler)
        # The operator RPCs (dead letters, incidents, artifacts, overview) are SchedulerService's.
        self.operations = self.scheduler
        self.ratelimit = ratelimit_pb2_grpc.RateLimitServiceStub(self._ratelimit)
        self.audit = audit_pb2_grpc.AuditServiceStub(self._audit)

    async def call(self, caller: Caller, method: Callable[..., Awaitable[T]], request: Any) -> T:
        """Call a unary method as ``caller`` (token forwarded) with the gateway's deadline."""
        return await method(request, metadata=caller.metadata, timeout=self.timeout_s)

    async def close(self) -> None:
        for channel in (self._scheduler, self._ratelimit, self._audit):
            await channel.close()
