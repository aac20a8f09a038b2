"""The scheduler as operators run it: `python -m orchestrator_scheduler` as a separate
process, configured only by environment variables, driven only over the network."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bench.ports import free_port
from orchestrator_grpckit import mint_dev_token
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2, scheduler_pb2_grpc

pytestmark = pytest.mark.integration
SECRET = "acceptance-secret-0123456789abcdef"


@pytest.fixture
def scheduler_process(database_url: str, tenants) -> Iterator[tuple[subprocess.Popen, int, int]]:
    grpc_port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "ORCH_DATABASE_URL": database_url,
        "ORCH_SCHEDULER_GRPC_PORT": str(grpc_port),
        "ORCH_SCHEDULER_METRICS_PORT": str(metrics_port),
        "ORCH_AUTH_HS256_SECRET": SECRET,
        "ORCH_SHUTDOWN_GRACE_S": "2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator_scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120  # a loaded CI machine starts processes slowly
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.communicate(timeout=5)[0] if proc.poll() is not None else ""
                    pytest.fail(f"scheduler did not become SERVING:\n{out}")
                time.sleep(0.1)
        yield proc, grpc_port, metrics_port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def test_reflection_lists_scheduler_and_health(scheduler_process):
    _, port, _ = scheduler_process
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for r in replies for s in r.list_services_response.service}
    assert {"stella.orchestrator.v1.SchedulerService", "grpc.health.v1.Health"} <= names
    assert "grpc.reflection.v1alpha.ServerReflection" in names


def test_serves_requests_metrics_and_stops_gracefully_on_sigterm(scheduler_process):
    proc, port, metrics_port = scheduler_process
    token = mint_dev_token(SECRET, "ops", ["acme"], ["orch:read", "orch:operate"])
    md = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        name = f"proc-{os.getpid()}-{time.time_ns() % 10**6}"
        created = stub.CreateSource(
            scheduler_pb2.CreateSourceRequest(
                source=resources_pb2.Source(name=name, source_type="osv", host="api.osv.dev")
            ),
            metadata=md,
            timeout=5,
        )
        got = stub.GetSource(
            scheduler_pb2.GetSourceRequest(source_id=created.source.id), metadata=md, timeout=5
        )
        assert got.source.name == name
        with pytest.raises(grpc.RpcError) as denied:
            stub.GetSource(scheduler_pb2.GetSourceRequest(source_id=created.source.id), timeout=5)
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED

    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    counters = [
        line
        for line in body.decode().splitlines()
        if line.startswith("grpc_server_handled_total{") and 'grpc_method="CreateSource"' in line
    ]
    assert len(counters) == 1, counters
    assert 'grpc_code="OK"' in counters[0]
    assert counters[0].endswith(" 1.0")

    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    # structured JSON logs: one access line per RPC, never the token
    assert '"method"' in out
    assert token not in out
