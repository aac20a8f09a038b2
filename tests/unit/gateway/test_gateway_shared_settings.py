"""The gateway's settings for what replicas share, and the keys of its per-caller buckets."""

from __future__ import annotations

import pytest

from orchestrator_gateway._middleware import CallerId
from orchestrator_gateway._ratelimit import ANONYMOUS_TENANT, bucket_key
from orchestrator_gateway._settings import GatewaySettings
from orchestrator_grpckit import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, ConfigError


def test_shared_stores_default_to_the_services_urls() -> None:
    settings = GatewaySettings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.redis_url == DEFAULT_REDIS_URL
    assert settings.ratelimit_key_prefix == "orch:gw:"
    assert settings.redis_timeout_s == 0.5
    assert settings.idempotency_wait_s == 20.0
    assert settings.db_pool_max == 10


def test_shared_stores_come_from_the_environment() -> None:
    settings = GatewaySettings.from_env(
        {
            "ORCH_DATABASE_URL": "postgresql://db.example/orch",
            "ORCH_REDIS_URL": "redis://cache.example:6380/2",
            "ORCH_GATEWAY_RATELIMIT_KEY_PREFIX": "gw-a:",
            "ORCH_GATEWAY_REDIS_TIMEOUT_S": "0.2",
            "ORCH_GATEWAY_IDEMPOTENCY_WAIT_S": "5",
            "ORCH_GATEWAY_DB_POOL_MAX": "4",
        }
    )
    assert settings.database_url == "postgresql://db.example/orch"
    assert settings.redis_url == "redis://cache.example:6380/2"
    assert settings.ratelimit_key_prefix == "gw-a:"
    assert settings.redis_timeout_s == 0.2
    assert settings.idempotency_wait_s == 5.0
    assert settings.db_pool_max == 4
    # The URLs may carry passwords: never in a repr (and so never in a log line).
    assert "db.example" not in repr(settings)
    assert "cache.example" not in repr(settings)


def test_a_bad_number_is_refused() -> None:
    with pytest.raises(ConfigError, match="ORCH_GATEWAY_IDEMPOTENCY_WAIT_S"):
        GatewaySettings.from_env({"ORCH_GATEWAY_IDEMPOTENCY_WAIT_S": "soon"})


def test_bucket_keys_per_caller() -> None:
    assert bucket_key(CallerId("acme", "alice")) != bucket_key(CallerId("acme", "bob"))
    assert bucket_key(CallerId("acme", "alice")) != bucket_key(CallerId("globex", "alice"))
    anonymous = bucket_key(CallerId("", "ip:10.0.0.1"))
    assert (anonymous.tenant, anonymous.host) == (ANONYMOUS_TENANT, "ip:10.0.0.1")
    # Braces delimit the Redis hash tag; a tenant holding them still gets a valid key.
    assert bucket_key(CallerId("a{b}", "x")).tenant == "a(b)"
