"""GrpcService over TLS (ORCH_TLS_*): a client that trusts the CA is served, a plaintext
client or one trusting another CA is not; with a client CA, only clients holding a
certificate it signed get through. The CA is made at test time (tests/_certs.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator_grpckit import ConfigError, GrpcService, ServiceConfig
from tests._certs import Pki, make_pki

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _health(port: int, credentials: grpc.ChannelCredentials | None) -> int:
    target = f"localhost:{port}"
    channel = (
        grpc.aio.insecure_channel(target)
        if credentials is None
        else grpc.aio.secure_channel(target, credentials)
    )
    async with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
        return int(reply.status)


def _trusting(ca: Path, **client: bytes) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=ca.read_bytes(), **client)


@pytest.mark.asyncio
async def test_tls_serves_clients_that_trust_its_ca_only(
    pki: Pki, make_service: Callable[..., Any], probe_config: Callable[..., ServiceConfig]
) -> None:
    service: GrpcService = await make_service(
        config=probe_config(tls_cert_file=pki.server_cert, tls_key_file=pki.server_key)
    )
    assert await _health(service.port, _trusting(pki.ca)) == SERVING
    for wrong in (None, _trusting(pki.other_ca)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _health(service.port, wrong)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio
async def test_client_ca_requires_a_client_certificate(
    pki: Pki, make_service: Callable[..., Any], probe_config: Callable[..., ServiceConfig]
) -> None:
    service: GrpcService = await make_service(
        config=probe_config(
            tls_cert_file=pki.server_cert,
            tls_key_file=pki.server_key,
            tls_client_ca_file=pki.ca,
        )
    )
    client = {
        "private_key": pki.client_key.read_bytes(),
        "certificate_chain": pki.client_cert.read_bytes(),
    }
    assert await _health(service.port, _trusting(pki.ca, **client)) == SERVING
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _health(service.port, _trusting(pki.ca))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_settings_come_in_pairs(tmp_path: Path) -> None:
    cert, key = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    config = ServiceConfig.from_env(
        "leases", environ={"ORCH_TLS_CERT_FILE": cert, "ORCH_TLS_KEY_FILE": key}
    )
    assert (config.tls_cert_file, config.tls_key_file) == (Path(cert), Path(key))
    with pytest.raises(ConfigError, match=r"ORCH_TLS_CERT_FILE=.*cannot read the file"):
        config.tls_pem()
    with pytest.raises(ConfigError, match="set together"):
        ServiceConfig.from_env("leases", environ={"ORCH_TLS_CERT_FILE": cert})
    with pytest.raises(ConfigError, match="ORCH_TLS_CLIENT_CA_FILE needs"):
        ServiceConfig.from_env("leases", environ={"ORCH_TLS_CLIENT_CA_FILE": cert})
    assert ServiceConfig.from_env("leases", environ={}).tls_pem() is None
