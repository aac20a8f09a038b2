"""The ratelimit service over real gRPC channels, against a real Redis and PostgreSQL.

The service runs in-process on a free port with a random Redis key prefix (so parallel
sessions and other tests never share buckets); each test uses its own hosts. Tests that
need a deterministic clock pass ``AcquireRequest.now`` (enabled for the test server). The
Redis failure test starts its own ``redis-server`` on a free port and kills it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import psycopg
import pytest

from orchestrator_ratelimit import RatelimitApp, build_app
from tests.conftest import REDIS_URL, service_config
from tests.integration.ratelimit._support import DEFAULTS_TENANT, Client, _client, _purge, _settings


@pytest.fixture(scope="module")
def defaults_tenant(database_url: str, tenants: tuple[str, str]) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orchestrator.tenants (id) VALUES (%s) ON CONFLICT DO NOTHING",
            (DEFAULTS_TENANT,),
        )
    return DEFAULTS_TENANT


@pytest.fixture(scope="module")
async def app(database_url: str, defaults_tenant: str) -> AsyncIterator[RatelimitApp]:
    settings = _settings()
    async with build_app(
        service_config("ratelimit", database_url), redis_url=REDIS_URL, settings=settings
    ) as built:
        await built.service.start()
        try:
            yield built
        finally:
            await built.service.stop()
    await _purge(settings.key_prefix)


@pytest.fixture
async def channel(app: RatelimitApp) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.service.port}") as ch:
        yield ch


@pytest.fixture
def rl(channel: grpc.aio.Channel) -> Client:
    return _client(channel)
