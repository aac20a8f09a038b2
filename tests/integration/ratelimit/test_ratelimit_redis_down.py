"""The ratelimit service while Redis is down: fail closed (health NOT_SERVING) then recover,
or fail open and grant. Each test starts its own ``redis-server`` on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest
import redis.asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.ports import free_port
from orchestrator_ratelimit import ENVOY_SERVICE_NAME, SERVICE_NAME, build_app
from orchestrator_ratelimit import _metrics as rl_metrics
from stella.orchestrator.v1 import ratelimit_pb2
from tests.conftest import service_config
from tests.integration.ratelimit._support import _acquire, _client, _host, _key, _settings

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def _redis_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    binary = shutil.which("redis-server")
    if binary is None:
        # scripts/services.sh installs it for `make test`: missing is a broken set-up, not a skip
        pytest.fail("redis-server is not on PATH; run `bash scripts/services.sh start` first")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


async def _wait_redis(port: int) -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(100):
            with contextlib.suppress(Exception):
                if await client.ping():
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"redis-server on {port} did not come up")
    finally:
        await client.aclose()


async def _health(channel: grpc.aio.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    return int(response.status)


async def test_redis_down_fails_closed_then_recovers(database_url: str) -> None:
    port = free_port()
    settings = _settings(envoy_auth="token")
    with _redis_server(port) as server:
        await _wait_redis(port)
        async with build_app(
            service_config("ratelimit", database_url),
            redis_url=f"redis://127.0.0.1:{port}/0",
            settings=settings,
        ) as built:
            await built.service.start()
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{built.service.port}") as ch:
                    client = _client(ch)
                    host = _host("down")
                    ok = await client.Acquire(_acquire(host))
                    assert ok.grants[0].granted
                    assert await _health(ch, SERVICE_NAME) == health_pb2.HealthCheckResponse.SERVING

                    server.terminate()
                    server.wait(timeout=10)
                    denied = await client.Acquire(_acquire(host, host))
                    for grant in denied.grants:
                        assert not grant.granted
                        assert grant.deny_reason == "backend_unavailable"
                        assert grant.retry_after.ToTimedelta() == timedelta(seconds=1)
                    # (orch_ratelimit_backend_up is process-wide: the suite's other, healthy
                    # ratelimit service in this process may set it back to 1 at any probe, so
                    # the down state is asserted through this service's health below.)
                    for name in (SERVICE_NAME, ENVOY_SERVICE_NAME):
                        status = await _health(ch, name)
                        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
                    with pytest.raises(grpc.aio.AioRpcError) as unavailable:
                        await client.GetBucket(ratelimit_pb2.GetBucketRequest(key=_key(host)))
                    assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE

                    with _redis_server(port):
                        await _wait_redis(port)
                        for _ in range(50):
                            if (
                                await _health(ch, SERVICE_NAME)
                                == health_pb2.HealthCheckResponse.SERVING
                            ):
                                break
                            await asyncio.sleep(0.1)
                        assert (
                            await _health(ch, SERVICE_NAME)
                            == health_pb2.HealthCheckResponse.SERVING
                        )
                        assert rl_metrics.BACKEND_UP._value.get() == 1
                        back = await client.Acquire(_acquire(host))
                        assert back.grants[0].granted
            finally:
                await built.service.stop()


async def test_redis_down_fail_open_grants(database_url: str) -> None:
    settings = _settings(envoy_auth="token", redis_failure="open")
    async with build_app(
        service_config("ratelimit", database_url),
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        settings=settings,
    ) as built:
        await built.service.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{built.service.port}") as ch:
                response = await _client(ch).Acquire(_acquire(_host("open")))
                assert response.grants[0].granted
                assert response.grants[0].deny_reason == ""
        finally:
            await built.service.stop()
