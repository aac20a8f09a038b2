"""Job: the handler's view of an Assignment."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from stella.orchestrator.v1 import common_pb2, leases_pb2
from stella_orchestrator.worker import Job
from stella_orchestrator.worker._job import from_struct, to_struct


def _ts(text: str) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(datetime.fromisoformat(text))
    return ts


def _assignment(**overrides) -> leases_pb2.Assignment:
    payload = struct_pb2.Struct()
    payload.update({"url": "https://nvd.example/feed", "page": 3, "ratio": 0.5, "tags": ["a", 1]})
    fields = {
        "job_id": "0190a6e4-0000-7000-8000-000000000001",
        "run_id": "0190a6e4-0000-7000-8000-0000000000aa",
        "tenant": "acme",
        "project": "feeds",
        "job_type": "advisory.ingest",
        "lease_id": "0190a6e4-0000-7000-8000-0000000000bb",
        "lease_expires_at": _ts("2025-01-02T03:04:05+00:00"),
        "attempt": 2,
        "max_attempts": 5,
        "idempotency_key": "nvd-2025-01-02",
        "correlation_id": "corr-1",
        "payload": payload,
        "payload_digest": "sha256:" + "0" * 64,
        "trace_parent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "trace_state": "rojo=00f067aa0ba902b7",
        "event_time_window": common_pb2.TimeWindow(
            start=_ts("2025-01-01T00:00:00+00:00"), end=_ts("2025-01-02T00:00:00+00:00")
        ),
        "source_id": "0190a6e4-0000-7000-8000-0000000000cc",
        "key": "nvd",
    }
    fields.update(overrides)
    return leases_pb2.Assignment(**fields)


def test_every_field_is_carried_over() -> None:
    job = Job.from_assignment(_assignment())
    assert job.id == "0190a6e4-0000-7000-8000-000000000001"
    assert job.run_id.endswith("aa")
    assert (job.tenant, job.project, job.job_type, job.key) == (
        "acme",
        "feeds",
        "advisory.ingest",
        "nvd",
    )
    assert (job.attempt, job.max_attempts) == (2, 5)
    assert job.idempotency_key == "nvd-2025-01-02"
    assert job.correlation_id == "corr-1"
    assert job.payload == {
        "url": "https://nvd.example/feed",
        "page": 3,
        "ratio": 0.5,
        "tags": ["a", 1],
    }
    assert isinstance(job.payload["page"], int)
    assert job.payload_digest == "sha256:" + "0" * 64
    assert job.lease_id.endswith("bb")
    assert job.lease_expires_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert job.trace_parent.startswith("00-0af7")
    assert job.trace_state == "rojo=00f067aa0ba902b7"
    assert job.event_time_window == (
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 2, tzinfo=UTC),
    )
    assert job.source_id.endswith("cc")


def test_optional_fields_absent() -> None:
    a = _assignment()
    for name in ("lease_expires_at", "event_time_window", "payload"):
        a.ClearField(name)
    job = Job.from_assignment(a)
    assert job.lease_expires_at is None
    assert job.event_time_window is None
    assert job.payload == {}


def test_job_is_frozen_and_repr_hides_the_payload() -> None:
    job = Job.from_assignment(_assignment())
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.attempt = 3  # type: ignore[misc]
    assert "nvd.example" not in repr(job)


def test_struct_round_trip() -> None:
    value = {"a": None, "b": True, "n": 2**53, "big": 2.0**60, "f": 1.25, "l": [{"x": "y"}]}
    back = from_struct(to_struct(value))
    assert back == {"a": None, "b": True, "n": 2**53, "big": 2.0**60, "f": 1.25, "l": [{"x": "y"}]}
    assert isinstance(back["n"], int)
    assert isinstance(back["big"], float)
    with pytest.raises(ValueError, match="JSON"):
        to_struct({"when": datetime.now(UTC)})
