"""UUIDv7 ids, id parsing and tenant ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator_core import (
    TENANT_ID_RE,
    FrozenClock,
    InvalidArgument,
    id_timestamp,
    new_id,
    parse_id,
    validate_tenant_id,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_new_id_is_rfc9562_uuidv7() -> None:
    value = new_id()
    parsed = uuid.UUID(value)
    assert str(parsed) == value  # lowercase, hyphenated
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert (parsed.int >> 76) & 0xF == 0x7
    assert (parsed.int >> 62) & 0b11 == 0b10


def test_new_id_embeds_the_clock_time_in_ms() -> None:
    clock = FrozenClock(T0 + timedelta(microseconds=123_999))
    value = new_id(clock)
    assert uuid.UUID(value).int >> 80 == int(T0.timestamp() * 1000) + 123
    assert id_timestamp(value) == T0 + timedelta(milliseconds=123)


def test_ids_sort_by_creation_time_across_milliseconds() -> None:
    clock = FrozenClock(T0)
    ids = []
    for _ in range(50):
        ids.append(new_id(clock))
        clock.advance(timedelta(milliseconds=1))
    assert ids == sorted(ids)
    assert len(set(ids)) == 50


def test_ids_are_strictly_increasing_within_one_millisecond() -> None:
    clock = FrozenClock(T0 + timedelta(days=1))
    ids = [new_id(clock) for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000
    assert {id_timestamp(i) for i in ids} == {T0 + timedelta(days=1)}


def test_system_clock_ids_are_unique_and_ordered() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert ids == sorted(ids)


def test_id_timestamp_rejects_other_versions() -> None:
    with pytest.raises(InvalidArgument, match="UUIDv7"):
        id_timestamp(str(uuid.uuid4()))


def test_parse_id_accepts_any_case() -> None:
    value = new_id()
    assert parse_id(value.upper(), "job_id") == uuid.UUID(value)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-a-uuid",
        "0190a6b23c4d7e5f8a9b0c1d2e3f4a5b",  # no hyphens
        "{0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b}",
        "0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b\n",
        "0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5g",
    ],
)
def test_parse_id_rejects_with_a_field_violation(bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_id(bad, "run_id")
    (violation,) = info.value.violations
    assert violation.field == "run_id"
    assert violation.description == f"must be a UUID, got '{bad}'"


def test_parse_id_truncates_huge_input_in_the_message() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_id("x" * 10_000, "job_id")
    assert len(info.value.violations[0].description) < 120


@pytest.mark.parametrize("good", ["acme", "a", "0", "acme-prod-2", "a" * 63])
def test_valid_tenant_ids(good: str) -> None:
    assert validate_tenant_id(good) == good
    assert TENANT_ID_RE.match(good)


@pytest.mark.parametrize(
    "bad", ["", "-acme", "Acme", "acme_prod", "a" * 64, "acme\n", "acme prod", "é"]
)
def test_invalid_tenant_ids(bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_tenant_id(bad, field="tenant")
    assert info.value.violations[0].field == "tenant"
