"""What the ratelimit service tests share: settings for an in-process service with a random
Redis key prefix, a token-bearing client and request builders.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import grpc
import redis.asyncio
from google.protobuf import duration_pb2, timestamp_pb2

from orchestrator_grpckit import mint_dev_token
from orchestrator_ratelimit import RatelimitSettings
from stella.orchestrator.v1 import common_pb2, ratelimit_pb2, ratelimit_pb2_grpc
from tests.conftest import DEV_SECRET, REDIS_URL

ALL = ("orch:read", "orch:work", "orch:quota", "orch:operate")
OPERATOR = common_pb2.OperatorContext(reason="integration test", ticket="OPS-1")
DEFAULTS_TENANT = "rl-defaults"


def _host(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}.example.org"


def _ts(value: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def _dur(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(timedelta(seconds=seconds))
    return out


def _settings(**overrides: object) -> RatelimitSettings:
    values: dict[str, object] = {
        "key_prefix": f"orch:rltest:{uuid.uuid4().hex}:",
        "jitter_s": 0.0,
        "envoy_port": 0,
        "allow_request_clock": True,
        "probe_interval_s": 0.2,
        "redis_timeout_s": 0.3,
    }
    values.update(overrides)
    return RatelimitSettings(**values)  # type: ignore[arg-type]


async def _purge(prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class Client:
    """A RateLimitService stub that sends a bearer token (and a tenant) with every call."""

    def __init__(self, channel: grpc.aio.Channel, token: str, tenant: str | None = None):
        self._stub = ratelimit_pb2_grpc.RateLimitServiceStub(channel)
        md = [("authorization", f"Bearer {token}")]
        if tenant:
            md.append(("x-stella-tenant", tenant))
        self.metadata = tuple(md)

    def __getattr__(self, name: str):
        method = getattr(self._stub, name)

        def call(request, **kwargs):
            return method(request, metadata=self.metadata, **kwargs)

        return call


def _client(channel: grpc.aio.Channel, tenant: str = "acme", scopes=ALL) -> Client:
    return Client(channel, mint_dev_token(DEV_SECRET, "tester", [tenant], scopes))


def _key(host: str, tenant: str = "") -> ratelimit_pb2.BucketKey:
    return ratelimit_pb2.BucketKey(tenant=tenant, host=host)


async def _configure(client: Client, host: str, capacity: int, rate: float) -> None:
    await client.ConfigureBucket(
        ratelimit_pb2.ConfigureBucketRequest(
            key=_key(host), capacity=capacity, refill_per_second=rate, operator=OPERATOR
        )
    )


def _acquire(*hosts: str, now: datetime | None = None, source_id: str = ""):
    request = ratelimit_pb2.AcquireRequest(
        items=[
            ratelimit_pb2.AcquireRequestItem(key=_key(h), tokens=1, source_id=source_id)
            for h in hosts
        ]
    )
    if now is not None:
        request.now.CopyFrom(_ts(now))
    return request
