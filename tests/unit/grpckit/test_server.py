"""GrpcService over real channels: health, reflection, request ids, metrics, lifecycle."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from orchestrator_grpckit import BackgroundTaskFailed, GrpcService, run_service

Meta = Callable[..., tuple[tuple[str, str], ...]]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.asyncio
async def test_health_is_serving_without_a_token(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", "test.v1.Probe"):
        response = await stub.Check(health_pb2.HealthCheckRequest(service=name))
        assert response.status == SERVING


@pytest.mark.asyncio
async def test_health_goes_not_serving_on_stop(service: GrpcService) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        first = await watch.read()
        assert first.status == SERVING
        stopping = asyncio.create_task(service.stop(0.5))
        second = await watch.read()
        assert second.status == NOT_SERVING
        await stopping
    await service.stop()  # idempotent
    await service.wait()


@pytest.mark.asyncio
async def test_reflection_lists_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests() -> Any:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = set()
    async for response in stub.ServerReflectionInfo(requests()):
        names |= {s.name for s in response.list_services_response.service}
    assert names == {
        "test.v1.Probe",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


@pytest.mark.asyncio
async def test_request_id_is_echoed_and_bound(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    echo = channel.unary_unary("/test.v1.Probe/Echo")
    call = echo(b"", metadata=auth(mint(), ("x-request-id", "req-42")))
    body = json.loads(await call)
    assert body["request_id"] == "req-42"
    assert ("x-request-id", "req-42") in tuple(await call.initial_metadata())


@pytest.mark.asyncio
async def test_request_id_is_generated_when_absent_or_unsafe(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    echo = channel.unary_unary("/test.v1.Probe/Echo")
    for extra in ((), (("x-request-id", "spaces {are} unsafe"),), (("x-request-id", "x" * 200),)):
        call = echo(b"", metadata=auth(mint(), *extra))
        body = json.loads(await call)
        sent = dict(await call.initial_metadata())["x-request-id"]
        assert body["request_id"] == sent
        assert len(sent) == 32
        assert sent.isalnum()


@pytest.mark.asyncio
async def test_request_id_is_sent_on_errors_too(channel: grpc.aio.Channel) -> None:
    call = channel.unary_unary("/test.v1.Probe/Echo")(b"", metadata=(("x-request-id", "r-1"),))
    with pytest.raises(grpc.aio.AioRpcError):
        await call
    assert ("x-request-id", "r-1") in tuple(await call.initial_metadata())


@pytest.mark.asyncio
async def test_all_four_rpc_shapes_pass_through_the_interceptors(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    md = auth(mint())
    stream = channel.unary_stream("/test.v1.Probe/Stream")
    assert [item async for item in stream(b"3", metadata=md)] == [b"0", b"1", b"2"]

    write_stream = channel.unary_stream("/test.v1.Probe/WriteStream")
    assert [item async for item in write_stream(b"", metadata=md)] == [b"a", b"b"]

    collect = channel.stream_unary("/test.v1.Probe/Collect")

    async def parts() -> Any:
        for part in (b"x", b"y"):
            yield part

    assert await collect(parts(), metadata=md) == b"x|y@acme"

    chat = channel.stream_stream("/test.v1.Probe/Chat")
    call = chat(metadata=md)
    await call.write(b"hi")
    assert await call.read() == b"HI"
    await call.done_writing()
    assert await call.read() == grpc.aio.EOF


@pytest.mark.asyncio
async def test_streams_are_authenticated(channel: grpc.aio.Channel) -> None:
    chat = channel.stream_stream("/test.v1.Probe/Chat")
    call = chat()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


@pytest.mark.asyncio
async def test_metrics_endpoint_counts_requests(
    service: GrpcService, channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    assert service.metrics_port
    await channel.unary_unary("/test.v1.Probe/Echo")(b"", metadata=auth(mint()))
    with pytest.raises(grpc.aio.AioRpcError):
        await channel.unary_unary("/test.v1.Probe/Raise")(b"not_found", metadata=auth(mint()))
    text = await asyncio.to_thread(_scrape, service.metrics_port)
    labels = 'grpc_method="{}",grpc_service="test.v1.Probe",grpc_type="unary"'
    assert f"grpc_server_started_total{{{labels.format('Echo')}}}" in text
    assert f'grpc_server_handled_total{{grpc_code="OK",{labels.format("Echo")}}}' in text
    assert f'grpc_server_handled_total{{grpc_code="NOT_FOUND",{labels.format("Raise")}}}' in text
    assert f'grpc_server_handling_seconds_bucket{{{labels.format("Echo")},le="0.005"}}' in text


@pytest.mark.asyncio
async def test_port_is_known_only_after_start(probe_config: Callable[..., Any]) -> None:
    service = GrpcService(probe_config(), [])
    with pytest.raises(RuntimeError):
        _ = service.port
    async with service:
        assert service.port > 0
    await service.stop()  # idempotent after `async with`
    with pytest.raises(RuntimeError):
        await service.start()


@pytest.mark.asyncio
async def test_stop_before_start_is_a_no_op(probe_config: Callable[..., Any]) -> None:
    service = GrpcService(probe_config(), [])
    await service.stop()
    await service.wait()


@pytest.mark.asyncio
async def test_bind_failure_is_reported(
    service: GrpcService, probe_config: Callable[..., Any]
) -> None:
    clash = GrpcService(probe_config(grpc_port=service.port, metrics_port=None), [])
    with pytest.raises(Exception, match="bind"):
        await clash.start()
    await clash.wait()


@pytest.mark.asyncio
async def test_in_flight_rpcs_finish_within_the_grace_period(
    service: GrpcService, mint: Callable[..., str], auth: Meta
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        call = channel.unary_unary("/test.v1.Probe/Slow")(b"0.2", metadata=auth(mint()))
        await asyncio.sleep(0.05)
        await service.stop(2.0)
        assert await call == b"done"


@pytest.mark.asyncio
async def test_background_tasks_run_and_are_cancelled_on_stop(
    make_service: Callable[..., Any],
) -> None:
    ticks: list[int] = []
    cancelled = asyncio.Event()

    async def ticker() -> None:
        try:
            while True:
                ticks.append(1)
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    service = await make_service(background=[("ticker", ticker)])
    await asyncio.sleep(0.05)
    await service.stop(0)
    assert ticks
    assert cancelled.is_set()
    await service.wait()


@pytest.mark.asyncio
async def test_a_dying_background_task_stops_the_service(make_service: Callable[..., Any]) -> None:
    async def flaky_loop() -> None:
        await asyncio.sleep(0.02)
        raise ConnectionError("redis went away")

    async def healthy_loop() -> None:
        await asyncio.Event().wait()

    service = await make_service(background=[flaky_loop, healthy_loop])
    with pytest.raises(BackgroundTaskFailed) as info:
        await asyncio.wait_for(service.wait(), 5)
    assert (
        info.value.task_name == "test_a_dying_background_task_stops_the_service.<locals>.flaky_loop"
    )
    assert isinstance(info.value.__cause__, ConnectionError)
    assert service.health  # health servicer stays inspectable
    response = await service.health.Check(health_pb2.HealthCheckRequest(service=""), None)
    assert response.status == NOT_SERVING


@pytest.mark.asyncio
async def test_run_service_on_sigterm(probe_config: Callable[..., Any]) -> None:
    service = GrpcService(probe_config(), [])
    runner = asyncio.create_task(run_service(service))
    for _ in range(200):
        if service.metrics_port is not None:
            break
        await asyncio.sleep(0.01)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert (await stub.Check(health_pb2.HealthCheckRequest())).status == SERVING
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(runner, 5)
    response = await service.health.Check(health_pb2.HealthCheckRequest(service=""), None)
    assert response.status == NOT_SERVING
