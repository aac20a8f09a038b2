"""The Envoy rate-limit listeners of the ratelimit service."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from orchestrator_ratelimit import RatelimitApp

from envoy.extensions.common.ratelimit.v3 import ratelimit_pb2 as envoy_common  # isort: skip
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc  # isort: skip

from tests.integration.ratelimit._support import Client, _configure, _host

pytestmark = pytest.mark.integration


def _envoy_request(domain: str, host: str, tenant: str | None = None) -> object:
    entries = [envoy_common.RateLimitDescriptor.Entry(key="host", value=host)]
    if tenant:
        entries.append(envoy_common.RateLimitDescriptor.Entry(key="tenant", value=tenant))
    return rls_pb2.RateLimitRequest(
        domain=domain, descriptors=[envoy_common.RateLimitDescriptor(entries=entries)]
    )


def _headers(response: rls_pb2.RateLimitResponse) -> dict[str, str]:
    return {h.key: h.value for h in response.response_headers_to_add}


async def test_envoy_should_rate_limit_ok_then_over_limit(
    app: RatelimitApp, rl: Client, channel: grpc.aio.Channel
) -> None:
    host = _host("envoy")
    await _configure(rl, host, capacity=2, rate=0.1)
    assert app.envoy_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.envoy_port}") as public:
        stub = rls_pb2_grpc.RateLimitServiceStub(public)
        first = await stub.ShouldRateLimit(_envoy_request("acme", host))
        assert first.overall_code == rls_pb2.RateLimitResponse.OK
        assert _headers(first) == {
            "x-ratelimit-limit": "2",
            "x-ratelimit-remaining": "1",
            "x-ratelimit-reset": "10",
        }
        status = first.statuses[0]
        assert status.code == rls_pb2.RateLimitResponse.OK
        assert status.limit_remaining == 1
        assert status.current_limit.requests_per_unit == 6
        assert status.current_limit.unit == rls_pb2.RateLimitResponse.RateLimit.MINUTE
        second = await stub.ShouldRateLimit(_envoy_request("other-domain", host, "acme"))
        assert second.overall_code == rls_pb2.RateLimitResponse.OK
        third = await stub.ShouldRateLimit(_envoy_request("acme", host))
        assert third.overall_code == rls_pb2.RateLimitResponse.OVER_LIMIT
        assert third.statuses[0].code == rls_pb2.RateLimitResponse.OVER_LIMIT
        headers = _headers(third)
        assert headers["x-ratelimit-remaining"] == "0"
        assert int(headers["x-ratelimit-reset"]) >= 9
        assert third.statuses[0].duration_until_reset.ToTimedelta() > timedelta(seconds=9)

        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.ShouldRateLimit(rls_pb2.RateLimitRequest(domain="acme"))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # On the main port the method needs a token, and the descriptors' tenant must be its own.
    main = rls_pb2_grpc.RateLimitServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await main.ShouldRateLimit(_envoy_request("acme", host))
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await main.ShouldRateLimit(_envoy_request("x", host, "globex"), metadata=rl.metadata)
    assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
    authed = await main.ShouldRateLimit(_envoy_request("x", host), metadata=rl.metadata)
    assert authed.overall_code == rls_pb2.RateLimitResponse.OVER_LIMIT


async def test_envoy_listener_hides_an_unexpected_error(
    app: RatelimitApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token-less listener answers an unexpected exception INTERNAL with a generic
    message, as the main port does; grpc.aio alone would send UNKNOWN with the message."""
    leaked = "redis://:hunter2@cache.internal:6379 refused"

    async def broken(*_: object) -> object:
        raise RuntimeError(leaked)

    monkeypatch.setattr(app.limiter, "decide", broken)  # a fault no real part produces
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.envoy_port}") as public:
        stub = rls_pb2_grpc.RateLimitServiceStub(public)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stub.ShouldRateLimit(_envoy_request("acme", _host("broken")))
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in (failed.value.details() or "")
    assert "hunter2" not in repr(failed.value.trailing_metadata())
