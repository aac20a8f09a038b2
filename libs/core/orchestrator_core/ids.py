"""Identifiers: UUIDv7 for every entity, validated tenant ids.

UUIDv7 (RFC 9562 §5.7) puts a 48-bit Unix millisecond timestamp in front, so ids sort by
creation time: ``ORDER BY id`` is creation order and gives stable cursor pagination. Within
one process ids are strictly increasing even inside one millisecond (RFC 9562 §6.2 method 2:
the random part of a same-millisecond id is the previous one plus a random increment).
"""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

from orchestrator_core.clock import Clock, ensure_utc
from orchestrator_core.errors import FieldViolation, InvalidArgument

__all__ = [
    "TENANT_ID_RE",
    "id_timestamp",
    "new_id",
    "parse_id",
    "validate_tenant_id",
]

TENANT_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""Tenant ids: lowercase letters, digits and '-', 1..63 characters, not starting with '-'."""

_UUID_TEXT_RE: Final = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_RAND_BITS: Final = 74  # 12 bits rand_a + 62 bits rand_b
_RAND_MASK: Final = (1 << _RAND_BITS) - 1
_MAX_STEP: Final = 1 << 32  # random increment inside one millisecond; leaves ~2^42 ids/ms
_MS_MASK: Final = (1 << 48) - 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
_ECHO_LIMIT: Final = 80  # how much of a bad value an error message repeats

_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def _next_fields(ms: int) -> tuple[int, int]:
    global _last_ms, _last_rand
    with _lock:
        if ms == _last_ms:
            rand = _last_rand + 1 + secrets.randbelow(_MAX_STEP)
            if rand > _RAND_MASK:  # exhausted this millisecond: borrow the next one
                ms += 1
                rand = secrets.randbits(_RAND_BITS - 1)
        else:
            # Keep the top bit clear so the same-ms increments have room before overflowing.
            rand = secrets.randbits(_RAND_BITS - 1)
        _last_ms, _last_rand = ms, rand
        return ms, rand


def new_id(clock: Clock | None = None) -> str:
    """Make a new UUIDv7 string (lowercase, hyphenated).

    Ids of one process are strictly increasing as long as the clock does not go back; when it
    does, the id follows the clock (its timestamp is the clock's time, its random part fresh).

    Args:
        clock: Source of the timestamp; the system clock when ``None``.

    Returns:
        e.g. ``"0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b"``.
    """
    now = ensure_utc(clock.now(), "clock.now()") if clock is not None else datetime.now(UTC)
    ms, rand = _next_fields(((now - _EPOCH) // _ONE_MS) & _MS_MASK)
    rand_a = rand >> 62
    rand_b = rand & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def id_timestamp(value: str | uuid.UUID) -> datetime:
    """Creation time embedded in a UUIDv7, to the millisecond.

    Raises:
        InvalidArgument: ``value`` is not a UUID of version 7.
    """
    parsed = value if isinstance(value, uuid.UUID) else parse_id(value, "id")
    if parsed.version != 7:
        raise InvalidArgument(
            f"id {parsed} is not a UUIDv7",
            [FieldViolation("id", f"must be a UUIDv7, got version {parsed.version}")],
        )
    return _EPOCH + (parsed.int >> 80) * _ONE_MS


def _echo(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _ECHO_LIMIT else text[:_ECHO_LIMIT] + "…"


def parse_id(value: str, field: str) -> uuid.UUID:
    """Parse a request field that must hold a UUID (hyphenated, any case).

    Args:
        value: The text to parse.
        field: Request field path, named in the violation.

    Returns:
        The UUID.

    Raises:
        InvalidArgument: With ``FieldViolation(field, "must be a UUID, got '…'")``.
    """
    if not isinstance(value, str) or not _UUID_TEXT_RE.fullmatch(value):
        description = f"must be a UUID, got '{_echo(value)}'"
        raise InvalidArgument(f"{field} {description}", [FieldViolation(field, description)])
    return uuid.UUID(value)


def validate_tenant_id(value: str, field: str = "tenant_id") -> str:
    """Check a tenant id against :data:`TENANT_ID_RE`.

    Args:
        value: The tenant id.
        field: Field path named in the violation.

    Returns:
        ``value`` unchanged.

    Raises:
        InvalidArgument: ``value`` does not match.
    """
    if not isinstance(value, str) or not TENANT_ID_RE.fullmatch(value):
        description = (
            "must be 1-63 lowercase letters, digits or '-', starting with a letter or digit, "
            f"got '{_echo(value)}'"
        )
        raise InvalidArgument(f"{field} {description}", [FieldViolation(field, description)])
    return value
