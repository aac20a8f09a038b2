"""Multi-address targets: the forms the SDK (and the gateway) accept and the round-robin
policy every channel gets; and two real gRPC servers that one worker's streams alternate
between."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import duration_pb2

from stella.orchestrator.v1 import leases_pb2, leases_pb2_grpc
from stella_orchestrator.targets import ROUND_ROBIN_OPTION, channel_options, channel_target
from stella_orchestrator.worker import Job, Worker


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("127.0.0.1:50052", "127.0.0.1:50052"),
        ("localhost:50052", "localhost:50052"),
        (" dns:///leases.orch.svc:50052 ", "dns:///leases.orch.svc:50052"),
        ("ipv4:10.0.0.1:50052,10.0.0.2:50052", "ipv4:10.0.0.1:50052,10.0.0.2:50052"),
        ("127.0.0.1:50052, 127.0.0.1:50062", "ipv4:127.0.0.1:50052,127.0.0.1:50062"),
        ("[::1]:50052,[::1]:50062", "ipv6:[::1]:50052,[::1]:50062"),
        ("127.0.0.1:50052,127.0.0.1:50052", "ipv4:127.0.0.1:50052"),
        ("localhost:50052,127.0.0.1:50062", "ipv4:127.0.0.1:50052,127.0.0.1:50062"),
    ],
)
def test_targets_become_grpc_names(target: str, expected: str) -> None:
    assert channel_target(target) == expected


@pytest.mark.parametrize(
    "target", ["", "  ", "127.0.0.1:50052,leases", "127.0.0.1:50052,,127.0.0.1:1", "a:0,b:1"]
)
def test_bad_targets_are_refused(target: str) -> None:
    with pytest.raises(ValueError, match="target"):
        channel_target(target)


def test_a_list_without_a_common_address_family_is_refused() -> None:
    with pytest.raises(ValueError, match="mixes"):
        channel_target("127.0.0.1:50052,[::1]:50062")


def test_round_robin_is_added_unless_a_policy_is_chosen() -> None:
    base = [("grpc.keepalive_time_ms", 30_000)]
    assert channel_options(base) == [*base, ROUND_ROBIN_OPTION]
    assert json.loads(ROUND_ROBIN_OPTION[1]) == {"loadBalancingConfig": [{"round_robin": {}}]}
    own = [("grpc.lb_policy_name", "pick_first")]
    assert channel_options(own) == own


class _Replica(leases_pb2_grpc.LeaseServiceServicer):
    """Welcomes each Work stream and drains it at once (as the leases service does when a
    stream reaches ORCH_WORK_STREAM_MAX_AGE_S), so the worker opens stream after stream."""

    def __init__(self) -> None:
        self.opened = 0

    async def Work(self, request_iterator, context):
        self.opened += 1
        await anext(aiter(request_iterator))  # Hello
        yield leases_pb2.WorkResponse(
            welcome=leases_pb2.ServerWelcome(
                session_id=f"s{self.opened}", lease_ttl=duration_pb2.Duration(seconds=30)
            )
        )
        yield leases_pb2.WorkResponse(drain=leases_pb2.ServerDrain())


@pytest.fixture
async def replicas() -> AsyncIterator[list[tuple[_Replica, grpc.aio.Server, int]]]:
    out = []
    for _ in range(2):
        servicer = _Replica()
        server = grpc.aio.server()
        leases_pb2_grpc.add_LeaseServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        out.append((servicer, server, port))
    yield out
    for _servicer, server, _port in out:
        await server.stop(None)


async def _until(predicate, what: str) -> None:
    deadline = time.monotonic() + 30
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_a_worker_alternates_its_streams_and_skips_a_dead_replica(replicas) -> None:
    (a, server_a, port_a), (b, _server_b, port_b) = replicas
    worker = Worker(f"127.0.0.1:{port_a},127.0.0.1:{port_b}", token="t", concurrency=1)

    async def handle(job: Job) -> None:
        return None

    worker.add_handler("t", handle)
    run = asyncio.create_task(worker.run())
    try:
        await _until(lambda: a.opened >= 3 and b.opened >= 3, "streams on both replicas")
        assert abs(a.opened - b.opened) <= 2, (a.opened, b.opened)
        await server_a.stop(None)
        before = b.opened
        await _until(lambda: b.opened >= before + 5, "streams on the surviving replica")
    finally:
        worker.stop()
        async with asyncio.timeout(30):
            await run
