"""Envoy's config, as the prod and dev overlays render it: it parses into the v3 Bootstrap
proto with no unknown field, Envoy itself accepts it, every upstream resolves to pods, and the
rate-limit rule fires on real requests through a real Envoy in front of the real ratelimit
service. Each check also fails on a broken copy."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import yaml

from bench.ports import free_port
from orchestrator_grpckit import mint_dev_token
from orchestrator_ratelimit import RatelimitApp, RatelimitSettings, build_app
from stella.orchestrator.v1 import common_pb2, ratelimit_pb2, ratelimit_pb2_grpc
from tests._certs import Pki, make_pki
from tests.conftest import DEV_SECRET, REDIS_URL, service_config
from tests.k8s._tools import (
    ROOT,
    Obj,
    Tools,
    copy_tree,
    envoy_bootstrap,
    envoy_validate,
    parse_bootstrap,
    render,
    upstream_problems,
    with_tls_files,
)

API_HOST = "grpc.orchestrator.test"


def test_bootstrap_parses_into_the_v3_proto(overlay: list[Obj]) -> None:
    assert parse_bootstrap(envoy_bootstrap(overlay)) == []


def test_bootstrap_parse_fails_on_unknown_or_mistyped_fields(
    rendered: dict[str, list[Obj]],
) -> None:
    good = envoy_bootstrap(rendered["prod"])
    unknown = copy.deepcopy(good)
    unknown["static_resources"]["clusters"][0]["lb_polcy"] = "ROUND_ROBIN"
    assert "lb_polcy" in parse_bootstrap(unknown)[0]
    inside_any = copy.deepcopy(good)
    manager = inside_any["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    manager["typed_config"]["http_filters"][0]["typed_config"]["failure_mode_deny_typo"] = True
    assert "failure_mode_deny_typo" in parse_bootstrap(inside_any)[0]
    mistyped = copy.deepcopy(good)
    mistyped["static_resources"]["clusters"][0]["dns_refresh_rate"] = "often"
    assert parse_bootstrap(mistyped)


def test_envoy_accepts_the_config(tools: Tools, overlay: list[Obj], tmp_path: Path) -> None:
    assert envoy_validate(tools, envoy_bootstrap(overlay), tmp_path) == []


def test_envoy_refuses_a_broken_config(
    tools: Tools, rendered: dict[str, list[Obj]], tmp_path: Path
) -> None:
    broken = envoy_bootstrap(rendered["prod"])
    broken["static_resources"]["clusters"][0]["lb_policy"] = "LEAST_REQUESTS"
    problems = envoy_validate(tools, broken, tmp_path)
    assert problems
    assert "LEAST_REQUESTS" in problems[0]


def test_envoy_upstreams_resolve_to_pods(overlay: list[Obj]) -> None:
    bootstrap = envoy_bootstrap(overlay)
    clusters = {c["name"] for c in bootstrap["static_resources"]["clusters"]}
    assert {"scheduler", "leases", "ratelimit", "audit", "ratelimit_rls"} <= clusters
    assert upstream_problems(overlay, bootstrap) == []
    for cluster in bootstrap["static_resources"]["clusters"]:
        if cluster["name"] in ("scheduler", "leases", "ratelimit", "audit"):
            # each pod is health-checked (over grpc.health.v1) and balanced per request/stream
            assert cluster["health_checks"][0]["grpc_health_check"] == {}
            assert cluster["lb_policy"] == "LEAST_REQUEST"


def test_upstream_check_fails_when_a_service_is_not_headless(tools: Tools, tmp_path: Path) -> None:
    tree = copy_tree(tmp_path / "k8s")
    path = tree / "base" / "leases.yaml"
    path.write_text(path.read_text().replace("  clusterIP: None\n", ""))
    objs = render(tools, tree / "overlays" / "prod")
    assert upstream_problems(objs, envoy_bootstrap(objs)) == [
        "cluster leases: Service orchestrator-leases is not headless"
    ]
    bootstrap = envoy_bootstrap(objs)
    bootstrap["static_resources"]["clusters"][0]["type"] = "LOGICAL_DNS"
    assert "cluster scheduler: type LOGICAL_DNS, not STRICT_DNS" in upstream_problems(
        objs, bootstrap
    )


def test_rate_limit_descriptors_come_from_what_clients_send(overlay: list[Obj]) -> None:
    """The descriptor keys on x-stella-tenant (the header every SDK sends to name its tenant)
    and on :authority (every HTTP/2 request has one), not on a header nobody sends."""
    bootstrap = envoy_bootstrap(overlay)
    manager = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    vhost = manager["typed_config"]["route_config"]["virtual_hosts"][0]
    headers = [
        a["request_headers"]["header_name"] for r in vhost["rate_limits"] for a in r["actions"]
    ]
    assert headers == ["x-stella-tenant", ":authority"]
    sdks = {
        "clients/python/stella_orchestrator/_connection.py": (
            'TENANT_HEADER: Final = "x-stella-tenant"'
        ),
        "clients/go/stellarpc/conn.go": 'const TenantHeader = "x-stella-tenant"',
        "clients/rust/src/worker.rs": 'pub const TENANT_HEADER: &str = "x-stella-tenant";',
    }
    for path, line in sdks.items():
        assert line in (ROOT / path).read_text(), path


# ------------------------------------------------------------ the rule fires, through Envoy


def localized(bootstrap: Obj, upstream_ports: dict[str, int]) -> tuple[Obj, dict[str, int]]:
    """The rendered bootstrap with only its addresses changed for this machine: listeners on
    loopback ports, and each cluster's Service name replaced by 127.0.0.1 and the port of the
    process standing in for its pods (a free, closed port for the services not started)."""
    out = copy.deepcopy(bootstrap)
    ports = {"grpc": free_port(), "stats": free_port(), "admin": free_port()}
    out["admin"]["address"]["socket_address"].update(address="127.0.0.1", port_value=ports["admin"])
    for listener in out["static_resources"]["listeners"]:
        listener["address"]["socket_address"].update(
            address="127.0.0.1", port_value=ports[listener["name"]]
        )
    for cluster in out["static_resources"]["clusters"]:
        port = (
            ports["admin"]
            if cluster["name"] == "admin"
            else upstream_ports.get(cluster["name"], free_port())
        )
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                endpoint["endpoint"]["address"]["socket_address"].update(
                    address="127.0.0.1", port_value=port
                )
    return out, ports


@pytest.fixture
async def ratelimit_app(database_url: str, tenants: tuple[str, str]) -> AsyncIterator[RatelimitApp]:
    settings = RatelimitSettings(key_prefix=f"orch:k8stest:{uuid.uuid4().hex}:", envoy_port=0)
    async with build_app(
        service_config("ratelimit", database_url), redis_url=REDIS_URL, settings=settings
    ) as app:
        await app.service.start()
        try:
            yield app
        finally:
            await app.service.stop()


@pytest.fixture
def edge_pki(tmp_path: Path) -> Pki:
    """A test CA and a certificate for localhost that Envoy's TLS listener serves."""
    return make_pki(tmp_path / "pki")


@pytest.fixture
def envoy_process(
    tools: Tools,
    rendered: dict[str, list[Obj]],
    ratelimit_app: RatelimitApp,
    edge_pki: Pki,
    tmp_path: Path,
) -> Iterator[dict[str, int]]:
    assert ratelimit_app.envoy_port
    config, ports = localized(
        with_tls_files(
            envoy_bootstrap(rendered["prod"]), edge_pki.server_cert, edge_pki.server_key
        ),
        {"ratelimit": ratelimit_app.service.port, "ratelimit_rls": ratelimit_app.envoy_port},
    )
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config))
    log = (tmp_path / "envoy.log").open("w")
    proc = subprocess.Popen(
        [str(tools.envoy), "-c", str(path), "--disable-hot-restart", "--log-level", "warn"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield ports
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


async def _until_upstream_healthy(admin_port: int, upstream_port: int) -> None:
    """Envoy routes to a pod only once its gRPC health check passed: wait for that."""
    flag = f"ratelimit::127.0.0.1:{upstream_port}::health_flags::healthy"
    async with httpx.AsyncClient() as client, asyncio.timeout(60):
        while True:
            try:
                body = (await client.get(f"http://127.0.0.1:{admin_port}/clusters")).text
            except httpx.TransportError:
                body = ""
            if flag in body:
                return
            await asyncio.sleep(0.1)


@pytest.mark.integration
async def test_the_rate_limit_rule_fires_through_a_real_envoy(
    ratelimit_app: RatelimitApp, envoy_process: dict[str, int], edge_pki: Pki
) -> None:
    await _until_upstream_healthy(envoy_process["admin"], ratelimit_app.service.port)
    token = mint_dev_token(
        DEV_SECRET, "tester", ["acme"], ("orch:read", "orch:quota", "orch:operate")
    )
    bucket = ratelimit_pb2.BucketKey(host=API_HOST)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ratelimit_app.service.port}") as direct:
        # acme's bucket at the API host: two requests, then (nearly) no refill
        await ratelimit_pb2_grpc.RateLimitServiceStub(direct).ConfigureBucket(
            ratelimit_pb2.ConfigureBucketRequest(
                key=bucket,
                capacity=2,
                refill_per_second=0.001,
                operator=common_pb2.OperatorContext(reason="k8s test", ticket="OPS-16"),
            ),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    # Envoy terminates TLS (the listener's certificate, here one for localhost from a test CA).
    credentials = grpc.ssl_channel_credentials(edge_pki.ca.read_bytes())
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{envoy_process['grpc']}",
        credentials,
        options=[
            ("grpc.default_authority", API_HOST),
            ("grpc.ssl_target_name_override", "localhost"),
        ],
    ) as edge:
        stub = ratelimit_pb2_grpc.RateLimitServiceStub(edge)
        named_tenant = (("authorization", f"Bearer {token}"), ("x-stella-tenant", "acme"))
        for _ in range(2):
            answer = await stub.GetBucket(
                ratelimit_pb2.GetBucketRequest(key=bucket), metadata=named_tenant
            )
            assert answer.bucket.capacity == 2  # the service answered, through Envoy
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await stub.GetBucket(ratelimit_pb2.GetBucketRequest(key=bucket), metadata=named_tenant)
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        metadata = dict(limited.value.trailing_metadata() or ()) | dict(
            limited.value.initial_metadata() or ()
        )
        assert metadata.get("x-envoy-ratelimited") == "true"
        # Without x-stella-tenant Envoy builds no descriptor: not limited at the edge (the
        # documented gap: single-tenant tokens need no header). Same empty bucket, all pass.
        for _ in range(3):
            await stub.GetBucket(
                ratelimit_pb2.GetBucketRequest(key=bucket),
                metadata=(("authorization", f"Bearer {token}"),),
            )
