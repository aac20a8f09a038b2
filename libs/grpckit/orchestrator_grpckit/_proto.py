"""Protobuf values ↔ Python values, for every service and the gateway: enum labels and
optional timestamps.

An enum's *label* is its value name without the enum's prefix, in lower case:
``JobState.JOB_STATE_DEAD_LETTER`` ↔ ``"dead_letter"``. The prefix is the enum's name in
upper snake case (``JobState`` → ``JOB_STATE_``), the contract's rule for every enum, so the
storage's text columns and the REST bodies use the labels and nothing lists them twice.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message


def enum_prefix(enum: EnumDescriptor) -> str:
    """``JobState`` → ``"JOB_STATE_"``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


def enum_labels(enum: EnumDescriptor) -> tuple[str, ...]:
    """Every label of an enum, e.g. ``("unspecified", "pending", ...)``."""
    prefix = enum_prefix(enum)
    return tuple(v.name.removeprefix(prefix).lower() for v in enum.values)


def enum_label(enum: EnumDescriptor, number: int, *, unknown: str | None = "unspecified") -> str:
    """The label of one enum number; ``unknown`` for a number the enum does not have.

    Raises:
        ValueError: the number is unknown and ``unknown`` is None.
    """
    value = enum.values_by_number.get(number)
    if value is None:
        if unknown is None:
            raise ValueError(f"{enum.name} has no value {number}")
        return unknown
    return value.name.removeprefix(enum_prefix(enum)).lower()


def enum_number(enum: EnumDescriptor, label: str) -> Any:
    """The number of a label; raises ``KeyError`` for an unknown one. (Any: each enum's
    generated ``ValueType`` is a type of its own.)"""
    return enum.values_by_name[enum_prefix(enum) + label.upper()].number


def optional_datetime(parent: Message, name: str) -> datetime | None:
    """The aware (UTC) datetime of ``parent``'s Timestamp field ``name``; None when unset."""
    if not parent.HasField(name):
        return None
    value: datetime = getattr(parent, name).ToDatetime(tzinfo=UTC)
    return value
