"""scripts/stack.py's port plan for N replicas: replica r binds base + 10·r for every port of
its service, no two processes share a port, and bases whose ranges meet are refused."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("orch_stack", ROOT / "scripts" / "stack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["orch_stack"] = module
    spec.loader.exec_module(module)
    return module


def test_default_bases_give_every_replica_its_own_ports(stack: ModuleType) -> None:
    plan = stack.plan(3, environ={})
    assert [(r.spec.name, r.index) for r in plan][:3] == [
        ("scheduler", 0),
        ("scheduler", 1),
        ("scheduler", 2),
    ]
    assert len(plan) == 5 * 3
    ports = {r.name: r.port for r in plan}
    assert [ports[f"leases-{i}"] for i in range(3)] == [50052, 50062, 50072]
    assert [ports[f"gateway-{i}"] for i in range(3)] == [8080, 8090, 8100]
    every = [p for r in plan for p in r.ports.values()]
    assert len(every) == len(set(every))
    ratelimit_1 = next(r for r in plan if r.name == "ratelimit-1")
    assert ratelimit_1.ports == {
        "ORCH_RATELIMIT_GRPC_PORT": 50063,
        "ORCH_RATELIMIT_METRICS_PORT": 9114,
        "ORCH_RATELIMIT_ENVOY_GRPC_PORT": 8091,
    }
    assert stack.targets(plan, "scheduler") == "127.0.0.1:50051,127.0.0.1:50061,127.0.0.1:50071"


def test_bases_from_the_environment(stack: ModuleType) -> None:
    plan = stack.plan(2, environ={"ORCH_LEASES_GRPC_PORT": "31002"})
    assert [r.port for r in plan if r.spec.name == "leases"] == [31002, 31012]


@pytest.mark.parametrize(
    ("replicas", "environ"),
    [
        (2, {"ORCH_LEASES_GRPC_PORT": "50061"}),  # leases-0 on scheduler-1's port
        (1, {"ORCH_AUDIT_METRICS_PORT": "50051"}),
        (0, {}),
        (2, {"ORCH_GATEWAY_HTTP_PORT": "65530"}),
    ],
)
def test_colliding_or_impossible_plans_are_refused(
    stack: ModuleType, replicas: int, environ: dict[str, str]
) -> None:
    with pytest.raises(SystemExit):
        stack.plan(replicas, environ=environ)
