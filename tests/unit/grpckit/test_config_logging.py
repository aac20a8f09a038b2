"""ServiceConfig.from_env, the env var table, JSON logging and the access log."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from orchestrator_grpckit import (
    DEV_HS256_SECRET,
    ConfigError,
    GrpcService,
    JsonFormatter,
    ServiceConfig,
    configure_logging,
    env_var_table,
)

Meta = Callable[..., tuple[tuple[str, str], ...]]


def test_defaults_follow_design_ports() -> None:
    for name, grpc_port, metrics_port in (
        ("scheduler", 50051, 9102),
        ("leases", 50052, 9103),
        ("ratelimit", 50053, 9104),
        ("audit", 50054, 9105),
    ):
        config = ServiceConfig.from_env(name, environ={})
        assert (config.grpc_port, config.metrics_port) == (grpc_port, metrics_port)
    config = ServiceConfig.from_env("scheduler", environ={})
    assert config.bind_host == "127.0.0.1"
    assert (
        config.database_url == "postgresql://orchestrator:orchestrator@127.0.0.1:5432/orchestrator"
    )
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert config.auth_hs256_secret == DEV_HS256_SECRET
    assert config.uses_dev_secret
    assert config.auth_ed25519_public_key_file is None
    assert (config.log_level, config.shutdown_grace_s) == ("INFO", 10.0)
    assert DEV_HS256_SECRET not in repr(config)


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "ORCH_LEASES_GRPC_PORT": "0",
        "ORCH_LEASES_METRICS_PORT": "19103",
        "ORCH_BIND_HOST": "0.0.0.0",
        "ORCH_DATABASE_URL": "postgresql://x@db/orch",
        "ORCH_REDIS_URL": "redis://cache:6379/1",
        "ORCH_AUTH_HS256_SECRET": "prod-secret-0123456789abcdef0123456789",
        "ORCH_AUTH_ED25519_PUBLIC_KEY_FILE": str(tmp_path / "k.pem"),
        "ORCH_LOG_LEVEL": "debug",
        "ORCH_SHUTDOWN_GRACE_S": "2.5",
        "ORCH_HEALTH_PROBE_S": "0.5",
        "ORCH_DB_POOL_MAX": "7",
        "ORCH_SCHEDULER_GRPC_PORT": "1",  # another service's variable is ignored
    }
    config = ServiceConfig.from_env("leases", environ=env)
    assert (config.grpc_port, config.metrics_port, config.bind_host) == (0, 19103, "0.0.0.0")
    assert (config.database_url, config.redis_url) == (
        "postgresql://x@db/orch",
        "redis://cache:6379/1",
    )
    assert not config.uses_dev_secret
    assert config.auth_ed25519_public_key_file == tmp_path / "k.pem"
    assert (config.log_level, config.shutdown_grace_s) == ("DEBUG", 2.5)
    assert config.health_probe_s == 0.5
    assert config.db_pool_max == 7
    with pytest.raises(ConfigError, match="ORCH_AUTH_ED25519_PUBLIC_KEY_FILE"):
        config.ed25519_public_key_pem()
    # An empty secret disables HS256.
    assert (
        ServiceConfig.from_env("leases", environ={"ORCH_AUTH_HS256_SECRET": ""}).auth_hs256_secret
        is None
    )


def test_custom_service_needs_explicit_ports() -> None:
    with pytest.raises(ConfigError, match="ORCH_GATEWAY_GRPC_PORT"):
        ServiceConfig.from_env("gateway", environ={})
    assert ServiceConfig.from_env("gateway", 0, environ={}).metrics_port == 9101
    config = ServiceConfig.from_env("my-svc", 6000, 7000, environ={"ORCH_MY_SVC_GRPC_PORT": "6001"})
    assert (config.grpc_port, config.metrics_port) == (6001, 7000)


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"ORCH_AUDIT_GRPC_PORT": "http"}, "ORCH_AUDIT_GRPC_PORT"),
        ({"ORCH_AUDIT_METRICS_PORT": "70000"}, "0..65535"),
        ({"ORCH_LOG_LEVEL": "LOUD"}, "ORCH_LOG_LEVEL"),
        ({"ORCH_SHUTDOWN_GRACE_S": "-1"}, "ORCH_SHUTDOWN_GRACE_S"),
        ({"ORCH_SHUTDOWN_GRACE_S": "nan"}, "ORCH_SHUTDOWN_GRACE_S"),
        ({"ORCH_HEALTH_PROBE_S": "0"}, "ORCH_HEALTH_PROBE_S=.* must be between"),
        ({"ORCH_HEALTH_PROBE_S": "soon"}, "ORCH_HEALTH_PROBE_S"),
        ({"ORCH_DB_POOL_MAX": "1"}, "ORCH_DB_POOL_MAX=.* must be between"),
    ],
)
def test_malformed_environment_is_rejected(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ServiceConfig.from_env("audit", environ=env)


def test_env_var_table_lists_every_variable() -> None:
    table = env_var_table()
    for name in (
        "ORCH_<SERVICE>_GRPC_PORT",
        "ORCH_<SERVICE>_METRICS_PORT",
        "ORCH_BIND_HOST",
        "ORCH_DATABASE_URL",
        "ORCH_REDIS_URL",
        "ORCH_AUTH_HS256_SECRET",
        "ORCH_AUTH_ED25519_PUBLIC_KEY_FILE",
        "ORCH_LOG_LEVEL",
        "ORCH_SHUTDOWN_GRACE_S",
        "ORCH_HEALTH_PROBE_S",
        "ORCH_DB_POOL_MAX",
    ):
        assert f"| `{name}` |" in table
    assert table.startswith("| variable | default | meaning |")


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("probe"))
    logger = logging.getLogger("orchestrator_grpckit")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.asyncio
async def test_access_log_has_one_json_line_per_rpc_and_no_token(
    captured_logs: io.StringIO, channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    token = mint()
    await channel.unary_unary("/test.v1.Probe/Echo")(
        b"payload-bytes", metadata=auth(token, ("x-request-id", "r-7"))
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await channel.unary_unary("/test.v1.Probe/Echo")(b"", metadata=(("x-request-id", "r-8"),))
    access = [
        line for line in _lines(captured_logs) if line["logger"] == "orchestrator_grpckit.access"
    ]
    assert len(access) == 2
    ok, denied = access
    assert (ok["method"], ok["code"], ok["level"]) == ("/test.v1.Probe/Echo", "OK", "INFO")
    assert (ok["request_id"], ok["tenant"], ok["subject"], ok["service"]) == (
        "r-7",
        "acme",
        "alice",
        "probe",
    )
    assert isinstance(ok["duration_ms"], float)
    assert (denied["code"], denied["request_id"], denied["tenant"]) == (
        "UNAUTHENTICATED",
        "r-8",
        None,
    )
    text = captured_logs.getvalue()
    assert token.split(".")[1] not in text  # not even the claims part
    assert "payload-bytes" not in text


@pytest.mark.asyncio
async def test_dev_secret_warning_at_startup(
    captured_logs: io.StringIO, make_service: Callable[..., Any], probe_config: Callable[..., Any]
) -> None:
    service: GrpcService = await make_service(
        config=probe_config(auth_hs256_secret=DEV_HS256_SECRET)
    )
    assert service.port
    warnings = [line for line in _lines(captured_logs) if line["level"] == "WARNING"]
    assert any("ORCH_AUTH_HS256_SECRET" in line["msg"] for line in warnings)


def test_configure_logging_is_idempotent() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    stream = io.StringIO()
    try:
        configure_logging("DEBUG", service="svc", stream=stream)
        configure_logging("INFO", service="svc", stream=stream)
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1
        try:
            raise ValueError("kaboom")
        except ValueError:
            logging.getLogger("x").exception("failed", extra={"job_id": "j1"})
        [line] = _lines(stream)
        assert (line["msg"], line["service"], line["job_id"], line["level"]) == (
            "failed",
            "svc",
            "j1",
            "ERROR",
        )
        assert "ValueError: kaboom" in line["exc"]
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)
