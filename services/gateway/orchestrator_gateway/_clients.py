"""gRPC channels and stubs of the services the gateway calls (the only way it reaches them)."""

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
)

T = TypeVar("T")

CHANNEL_OPTIONS = (
    # A target that resolves to several addresses (a headless Service in Kubernetes:
    # deploy/k8s) gets calls spread over all of them; grpc's default, pick_first, would send
    # every call of this replica to one pod until the connection is recycled.
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)


class Clients:
    """One channel per service, opened lazily by grpc and closed by :meth:`close`."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.timeout_s = settings.grpc_timeout_s
        self._scheduler = grpc.aio.insecure_channel(
            settings.scheduler_target, options=CHANNEL_OPTIONS
        )
        self._ratelimit = grpc.aio.insecure_channel(
            settings.ratelimit_target, options=CHANNEL_OPTIONS
        )
        self._audit = grpc.aio.insecure_channel(settings.audit_target, options=CHANNEL_OPTIONS)
        self.scheduler = scheduler_pb2_grpc.SchedulerServiceStub(self._scheduler)
        self.events = events_pb2_grpc.EventStreamServiceStub(self._scheduler)
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
