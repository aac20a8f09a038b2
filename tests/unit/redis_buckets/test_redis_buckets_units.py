"""Unit tests of the Redis adapter's values: validation, key naming, the Lua loader
(no I/O)."""

from __future__ import annotations

import math

import pytest

from orchestrator_redis import (
    AdaptivePolicy,
    BucketConfig,
    BucketKey,
    BucketStore,
    CircuitPolicy,
    InvalidBucketArgument,
    OrchestratorRedisError,
    RedisUnavailable,
    redis_keys,
)
from orchestrator_redis._lua import parse_scripts, script, scripts


def test_bucket_config_accepts_valid_values():
    assert BucketConfig(1, 0.001) == BucketConfig(1.0, 0.001)


@pytest.mark.parametrize(
    ("capacity", "refill", "field"),
    [
        (0.5, 1, "capacity"),
        (0, 1, "capacity"),
        (10, 0, "refill_per_s"),
        (10, -1, "refill_per_s"),
        (math.inf, 1, "capacity"),
        (10, math.nan, "refill_per_s"),
        ("10", 1, "capacity"),
    ],
)
def test_bucket_config_rejects(capacity, refill, field):
    with pytest.raises(InvalidBucketArgument) as caught:
        BucketConfig(capacity, refill)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, OrchestratorRedisError)


@pytest.mark.parametrize("tenant", ["", "a{b", "a}b"])
def test_bucket_key_rejects_bad_tenants(tenant):
    with pytest.raises(InvalidBucketArgument):
        BucketKey(tenant, "h")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_ratio": 0},
        {"failure_ratio": 1.5},
        {"min_volume": 0},
        {"min_volume": 2.5},
        {"window_s": 0},
        {"open_s": -1},
    ],
)
def test_circuit_policy_rejects(kwargs):
    with pytest.raises(InvalidBucketArgument):
        CircuitPolicy(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"decrease_factor": 0},
        {"decrease_factor": 1.1},
        {"min_refill_per_s": 0},
        {"probe_per_s": -0.1},
        {"goodput_margin": 0},
        {"goodput_margin": 1.5},
        {"burst_s": 0},
        {"min_goodput_window_s": float("nan")},
    ],
)
def test_adaptive_policy_rejects(kwargs):
    with pytest.raises(InvalidBucketArgument):
        AdaptivePolicy(**kwargs)


def test_policy_defaults():
    assert CircuitPolicy() == CircuitPolicy(0.5, 20, 30.0, 15.0)
    assert AdaptivePolicy() == AdaptivePolicy(0.5, 0.1, 0.02, 0.9, 1.0, 0.25, 4.0, 0.5, 0.85)


def test_key_naming_shares_the_tenant_hash_tag():
    keys = redis_keys("orch:rl:", BucketKey("acme", "api.example.com:8443"))
    assert keys.bucket == "orch:rl:b:{acme}:api.example.com:8443"
    assert keys.index == "orch:rl:i:{acme}"
    assert keys.config == "orch:rl:c:{acme}"
    assert redis_keys("p:", BucketKey("acme")).bucket == "p:b:{acme}:"


def test_store_rejects_prefix_with_braces():
    with pytest.raises(InvalidBucketArgument):
        BucketStore(None, prefix="x{y}:")  # type: ignore[arg-type]


def test_redis_unavailable_is_under_the_root():
    assert issubclass(RedisUnavailable, OrchestratorRedisError)


def test_lua_scripts_are_named_and_carry_the_prelude():
    names = set(scripts())
    assert {
        "bucket_acquire",
        "bucket_state",
        "bucket_configure",
        "bucket_throttle",
        "bucket_record",
        "bucket_override",
        "bucket_index_prune",
    } <= names
    acquire = script("bucket_acquire")
    assert "local function take" in acquire.source
    assert len(acquire.sha) == 40
    assert "'TIME'" not in acquire.source  # time always comes from the caller
    with pytest.raises(KeyError):
        script("nope")


def test_parse_scripts_rules():
    parsed = parse_scripts("local x = 1\n-- name: a_b\nreturn x\n-- name: c_d\nreturn 2\n")
    assert parsed["a_b"].startswith("local x = 1")
    assert parsed["a_b"].rstrip().endswith("return x")
    assert "return 2" in parsed["c_d"]
    with pytest.raises(ValueError, match="twice"):
        parse_scripts("-- name: a\nreturn 1\n-- name: a\nreturn 2\n")
    with pytest.raises(ValueError, match="no Lua"):
        parse_scripts("-- name: a\n\n-- name: b\nreturn 2\n")
    with pytest.raises(ValueError, match="header"):
        parse_scripts("return 1\n")
