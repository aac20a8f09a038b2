"""Secure by default: which binds and keys a service refuses, and the documented table."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator_gateway import GatewaySettings
from orchestrator_grpckit import (
    DEV_HS256_SECRET,
    ConfigError,
    ServiceConfig,
    env_var_table,
    is_loopback,
    refuse_exposed_dev_defaults,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.7", False),
        ("orchestrator.internal", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_exposed_dev_key_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as refused:
        refuse_exposed_dev_defaults(
            "audit", "0.0.0.0", ["ORCH_AUDIT_SIGNING_KEY_FILE"], insecure_dev=False
        )
    message = str(refused.value)
    assert message.startswith("audit refuses to start: ORCH_BIND_HOST=0.0.0.0 is not loopback")
    assert "Set ORCH_AUDIT_SIGNING_KEY_FILE " in message
    assert "ORCH_INSECURE_DEV=1" in message


@pytest.mark.parametrize(
    ("host", "dev", "insecure"),
    [
        ("127.0.0.1", ["ORCH_AUTH_HS256_SECRET"], False),  # loopback: local development
        ("0.0.0.0", [], False),  # every key is the operator's own
        ("0.0.0.0", ["ORCH_AUTH_HS256_SECRET"], True),  # the explicit switch
    ],
)
def test_allowed(host: str, dev: list[str], insecure: bool) -> None:
    refuse_exposed_dev_defaults("leases", host, dev, insecure_dev=insecure)


def test_service_config_reads_the_switch_and_names_the_dev_secret() -> None:
    exposed = {"ORCH_BIND_HOST": "0.0.0.0"}
    config = ServiceConfig.from_env("leases", environ=exposed)
    assert config.uses_dev_secret
    assert not config.insecure_dev
    with pytest.raises(ConfigError, match="Set ORCH_AUTH_HS256_SECRET "):
        config.refuse_exposed_dev_defaults()
    with pytest.raises(ConfigError, match="ORCH_AUDIT_SIGNING_KEY_FILE and ORCH_AUTH_HS256"):
        config.refuse_exposed_dev_defaults("ORCH_AUDIT_SIGNING_KEY_FILE")
    ServiceConfig.from_env(
        "leases", environ={**exposed, "ORCH_INSECURE_DEV": "1"}
    ).refuse_exposed_dev_defaults("ORCH_AUDIT_SIGNING_KEY_FILE")
    # Ed25519 only (an empty secret), as deploy/k8s runs: nothing development is left.
    ServiceConfig.from_env(
        "leases", environ={**exposed, "ORCH_AUTH_HS256_SECRET": ""}
    ).refuse_exposed_dev_defaults()
    with pytest.raises(ConfigError, match="ORCH_INSECURE_DEV='yes' is invalid"):
        ServiceConfig.from_env("leases", environ={"ORCH_INSECURE_DEV": "yes"})


def test_gateway_settings_refuse_the_exposed_dev_secret() -> None:
    with pytest.raises(ConfigError, match="gateway refuses to start"):
        GatewaySettings.from_env({"ORCH_BIND_HOST": "0.0.0.0"}).refuse_exposed_dev_defaults()
    GatewaySettings.from_env(
        {"ORCH_BIND_HOST": "0.0.0.0", "ORCH_INSECURE_DEV": "1"}
    ).refuse_exposed_dev_defaults()
    GatewaySettings.from_env(
        {"ORCH_BIND_HOST": "0.0.0.0", "ORCH_AUTH_HS256_SECRET": "own-" + DEV_HS256_SECRET}
    ).refuse_exposed_dev_defaults()
    GatewaySettings.from_env({}).refuse_exposed_dev_defaults()


def test_configuration_doc_carries_the_generated_table() -> None:
    # docs/configuration.md shows env_var_table() verbatim: regenerate it after editing ENV_VARS.
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert env_var_table() in doc
