"""Protobuf ↔ Python values (orchestrator_grpckit._proto) and service_of."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator_grpckit import (
    enum_label,
    enum_labels,
    enum_number,
    enum_prefix,
    optional_datetime,
    service_of,
)
from stella.orchestrator.v1 import common_pb2, resources_pb2

JOB_STATE = common_pb2.JobState.DESCRIPTOR


def test_enum_labels_round_trip() -> None:
    assert enum_prefix(JOB_STATE) == "JOB_STATE_"
    assert enum_prefix(resources_pb2.OverlapPolicy.DESCRIPTOR) == "OVERLAP_POLICY_"
    for label in enum_labels(JOB_STATE):
        assert enum_label(JOB_STATE, enum_number(JOB_STATE, label)) == label
    assert enum_label(JOB_STATE, common_pb2.JOB_STATE_DEAD) == "dead"
    assert enum_number(JOB_STATE, "dead") == common_pb2.JOB_STATE_DEAD


def test_unknown_enum_values() -> None:
    assert enum_label(JOB_STATE, 999) == "unspecified"
    assert enum_label(JOB_STATE, 999, unknown="one") == "one"
    with pytest.raises(ValueError, match="999"):
        enum_label(JOB_STATE, 999, unknown=None)
    with pytest.raises(KeyError):
        enum_number(JOB_STATE, "nonsense")


def test_optional_datetime() -> None:
    spec = resources_pb2.JobSpec()
    assert optional_datetime(spec, "not_before") is None
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    spec.not_before.FromDatetime(at)
    assert optional_datetime(spec, "not_before") == at


@dataclass(frozen=True)
class _Parts:
    service: Any
    other: str


async def test_service_of_yields_the_service_and_cleans_up() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def build_app(name: str, *, extra: int = 0) -> AsyncIterator[_Parts]:
        events.append(f"open {name} {extra}")
        try:
            yield _Parts(service=f"service {name}", other="parts")
        finally:
            events.append("closed")

    async with service_of(build_app)("a", extra=2) as service:
        assert service == "service a"
    assert events == ["open a 2", "closed"]
