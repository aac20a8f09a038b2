"""Opaque cursor page tokens.

A token carries the last id of the previous page and a fingerprint of the filters it was
issued for, so a token reused with other filters is refused instead of silently skipping
rows. Order is by id, and ids are UUIDv7 (time ordered), so pages are stable while rows
are added.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping

from orchestrator_core import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size(requested: int) -> int:
    """The page size to use: 0 → default, capped at MAX_PAGE_SIZE; negative is an error."""
    if requested < 0:
        raise InvalidArgument(
            "page_size must not be negative",
            [FieldViolation("page_size", f"must be 0..{MAX_PAGE_SIZE}, got {requested}")],
        )
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(filters: Mapping[str, object]) -> str:
    blob = json.dumps(filters, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def encode_token(last: str | int, filters: Mapping[str, object]) -> str:
    raw = json.dumps({"a": last, "f": _fingerprint(filters)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, filters: Mapping[str, object]) -> object:
    bad = InvalidArgument(
        "page_token is not valid for this request",
        [
            FieldViolation(
                "page_token",
                "pass the next_page_token of the previous page unchanged, with the same filters",
            )
        ],
    )
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise bad from None
    if not isinstance(data, dict) or data.get("f") != _fingerprint(filters) or "a" not in data:
        raise bad
    return data["a"]


def decode_value_token(token: str, filters: Mapping[str, object]) -> object:
    """The raw cursor value of a token issued by :func:`encode_token` for ``filters``."""
    return _decode(token, filters)


def decode_id_token(token: str, filters: Mapping[str, object]) -> uuid.UUID | None:
    """The id after which the next page starts, or None for the first page."""
    if not token:
        return None
    value = _decode(token, filters)
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidArgument(
            "page_token is not valid for this request",
            [
                FieldViolation(
                    "page_token", "pass the next_page_token of the previous page unchanged"
                )
            ],
        ) from None


def decode_text_token(token: str, filters: Mapping[str, object]) -> str | None:
    """The text key after which the next page starts, or None for the first page."""
    if not token:
        return None
    value = _decode(token, filters)
    if not isinstance(value, str):
        raise InvalidArgument(
            "page_token is not valid for this request",
            [
                FieldViolation(
                    "page_token", "pass the next_page_token of the previous page unchanged"
                )
            ],
        )
    return value


def decode_seq_token(token: str, filters: Mapping[str, object]) -> int:
    """The event seq after which the next page starts (0 for the first page)."""
    if not token:
        return 0
    value = _decode(token, filters)
    if not isinstance(value, int) or value < 0:
        raise InvalidArgument(
            "page_token is not valid for this request",
            [
                FieldViolation(
                    "page_token", "pass the next_page_token of the previous page unchanged"
                )
            ],
        )
    return value
