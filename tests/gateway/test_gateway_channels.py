"""The gateway's channels spread calls over every address its target resolves to (a headless
Service resolves to each pod), instead of pinning one, over real gRPC servers."""

from __future__ import annotations

from collections import Counter

import grpc

from orchestrator_gateway._clients import Clients
from orchestrator_gateway._settings import GatewaySettings
from stella.orchestrator.v1 import scheduler_pb2

METHOD = "/stella.orchestrator.v1.SchedulerService/ListSources"


async def _server(name: str, calls: Counter[str]) -> tuple[grpc.aio.Server, int]:
    """A gRPC server that answers ListSources with an empty page and counts the calls."""

    async def list_sources(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        calls[name] += 1
        return scheduler_pb2.ListSourcesResponse().SerializeToString()

    handler = grpc.method_handlers_generic_handler(
        "stella.orchestrator.v1.SchedulerService",
        {"ListSources": grpc.unary_unary_rpc_method_handler(list_sources)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def test_calls_are_spread_over_every_resolved_address() -> None:
    calls: Counter[str] = Counter()
    first, port_a = await _server("a", calls)
    second, port_b = await _server("b", calls)
    # what DNS answers for a headless Service with two ready pods
    target = f"ipv4:127.0.0.1:{port_a},127.0.0.1:{port_b}"
    clients = Clients(GatewaySettings(scheduler_target=target))
    try:
        for _ in range(20):
            await clients.scheduler.ListSources(scheduler_pb2.ListSourcesRequest(), timeout=30)
    finally:
        await clients.close()
        await first.stop(None)
        await second.stop(None)
    assert calls["a"] + calls["b"] == 20
    assert calls["a"] >= 5
    assert calls["b"] >= 5
