"""The shared SDK vectors (tests/vectors/*.json): the Python SDK must produce exactly the
bytes the Go and Rust SDKs' tests check against the same files."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import grpc
import pytest

from stella.orchestrator.v1 import common_pb2
from stella_orchestrator.worker import (
    ERROR_CLASSES,
    NON_RETRYABLE_CODES,
    Backoff,
    JobFailure,
    ParseError,
    SchemaMismatch,
    SplitMix64,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamUnavailable,
    bytes_digest,
    canonical_json,
    json_digest,
)
from stella_orchestrator.worker._session import LEASE_LOST_REASONS

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _cases(name: str) -> list[Any]:
    cases = _load(name)["cases"]
    assert cases, f"{name} has no cases"
    return cases


def _data(case: dict[str, Any]) -> bytes:
    if "repeat" in case:
        return bytes([case["repeat"]["byte"]]) * case["repeat"]["count"]
    return bytes.fromhex(case["data_hex"])


@pytest.mark.parametrize("case", _cases("artifact_digests.json"), ids=lambda c: c["name"])
def test_artifact_digests(case: dict[str, Any]) -> None:
    data = _data(case)
    assert len(data) == case["size_bytes"]
    assert bytes_digest(data) == case["digest"]


@pytest.mark.parametrize("case", _cases("canonical_json.json"), ids=lambda c: c["name"])
def test_canonical_json(case: dict[str, Any]) -> None:
    value = json.loads(case["input"])
    assert canonical_json(value) == case["canonical"].encode("utf-8")
    assert json_digest(value) == case["digest"]
    # Canonical output is a fixed point.
    assert canonical_json(json.loads(case["canonical"])) == case["canonical"].encode("utf-8")


def test_splitmix64_reference_outputs() -> None:
    ref = _load("backoff.json")["splitmix64_reference"]
    generator = SplitMix64(int(ref["seed"]))
    assert [str(generator.next_u64()) for _ in ref["outputs"]] == ref["outputs"]


@pytest.mark.parametrize("case", _cases("backoff.json"), ids=lambda c: f"seed-{c['seed']}")
def test_backoff_schedule(case: dict[str, Any]) -> None:
    backoff = Backoff(
        initial_s=case["initial_s"],
        cap_s=case["cap_s"],
        multiplier=case["multiplier"],
        rng=SplitMix64(int(case["seed"])),
    )
    assert [backoff.ceiling(n) for n in range(len(case["ceilings"]))] == case["ceilings"]
    delays = [backoff.next_delay() for _ in case["delays"]]
    assert [struct.pack(">d", d).hex() for d in delays] == case["delay_bits"]
    assert [repr(d) for d in delays] == case["delays"]


def test_error_classes() -> None:
    doc = _load("errors.json")
    assert {k: v["number"] for k, v in doc["error_classes"].items()} == dict(ERROR_CLASSES)
    for label, entry in doc["error_classes"].items():
        assert common_pb2.ErrorClass.Value(entry["enum"]) == ERROR_CLASSES[label]


def test_job_failure_classes() -> None:
    made = {
        "upstream_throttled": UpstreamThrottled(),
        "upstream_unavailable": UpstreamUnavailable(),
        "upstream_rejected": UpstreamRejected(),
        "parse_error": ParseError(),
        "schema_mismatch": SchemaMismatch(),
        "job_failure": JobFailure(),
    }
    expected = _load("errors.json")["job_failures"]
    assert {e["kind"] for e in expected} == set(made)
    for entry in expected:
        failure = made[entry["kind"]]
        assert (failure.error_class, failure.retryable) == (entry["class"], entry["retryable"])


def test_status_codes_and_lease_lost_reasons() -> None:
    doc = _load("errors.json")
    assert sorted(LEASE_LOST_REASONS) == doc["lease_lost_reasons"]
    by_name = {c.name: c for c in grpc.StatusCode}
    assert {e["code"] for e in doc["status_codes"]} == set(by_name)
    for entry in doc["status_codes"]:
        code = by_name[entry["code"]]
        assert code.value[0] == entry["number"]
        assert (code not in NON_RETRYABLE_CODES) == entry["reconnect"], entry
        assert (entry["kind"] in ("permission", "invalid")) == (not entry["reconnect"]), entry
