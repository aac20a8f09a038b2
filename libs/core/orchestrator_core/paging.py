"""Paged lists: the page size rule, opaque cursor tokens and the one "fetch one row more than
the page, keep the page, encode the next token" step every List RPC takes.

A token carries the cursor of the last row of the previous page and a fingerprint of the
filters it was issued for, so a token reused with other filters is refused (INVALID_ARGUMENT)
instead of silently skipping rows. Ids are UUIDv7 (time ordered), so id-ordered pages are
stable while rows are added. The cursor kinds are :data:`BY_ID`, :data:`BY_SEQ`,
:data:`BY_TEXT` (a text key the caller builds) and :func:`by_time` (newest-first lists).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from orchestrator_core.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

R = TypeVar("R")


class PageRequest(Protocol):
    """What every List request carries (the generated messages have both fields)."""

    page_size: int
    page_token: str


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
    """The token of a page whose last row has cursor ``last``, for ``filters``."""
    raw = json.dumps({"a": last, "f": _fingerprint(filters)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad_token() -> InvalidArgument:
    return InvalidArgument(
        "page_token is not valid for this request",
        [
            FieldViolation(
                "page_token",
                "pass the next_page_token of the previous page unchanged, with the same filters",
            )
        ],
    )


def decode_value_token(token: str, filters: Mapping[str, object]) -> object:
    """The raw cursor value of a token issued by :func:`encode_token` for ``filters``."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise _bad_token() from None
    if not isinstance(data, dict) or data.get("f") != _fingerprint(filters) or "a" not in data:
        raise _bad_token()
    return data["a"]


def decode_id_token(token: str, filters: Mapping[str, object]) -> uuid.UUID | None:
    """The id after which the next page starts, or None for the first page."""
    if not token:
        return None
    try:
        return uuid.UUID(str(decode_value_token(token, filters)))
    except ValueError:
        raise _bad_token() from None


def decode_text_token(token: str, filters: Mapping[str, object]) -> str | None:
    """The text key after which the next page starts, or None for the first page."""
    if not token:
        return None
    value = decode_value_token(token, filters)
    if not isinstance(value, str):
        raise _bad_token()
    return value


def decode_seq_token(token: str, filters: Mapping[str, object]) -> int:
    """The event seq after which the next page starts (0 for the first page)."""
    if not token:
        return 0
    value = decode_value_token(token, filters)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _bad_token()
    return value


def decode_time_token(
    token: str, filters: Mapping[str, object]
) -> tuple[datetime, uuid.UUID] | None:
    """The ``(time, id)`` after which a newest-first page starts, or None for the first."""
    if not token:
        return None
    raw = decode_value_token(token, filters)
    try:
        at, _, ident = str(raw).partition("|")
        return datetime.fromisoformat(at), uuid.UUID(ident)
    except ValueError:
        raise _bad_token() from None


@dataclass(frozen=True)
class Cursor:
    """How a list is ordered: how a token becomes the store's "after" argument (named
    ``arg``), and which value of a page's last row the next token carries."""

    arg: str
    decode: Callable[[str, Mapping[str, object]], object]
    last: Callable[[Any], str | int]


BY_ID = Cursor("after_id", decode_id_token, lambda row: str(row["id"]))
BY_SEQ = Cursor("after_seq", decode_seq_token, lambda row: int(row["seq"]))


def by_text(key: Callable[[Any], str]) -> Cursor:
    """Ordered by a text key the caller builds from a row (e.g. ``"<source>|<job type>"``);
    the store takes it as ``after``."""
    return Cursor("after", decode_text_token, key)


def by_time(at_field: str) -> Cursor:
    """Newest first by ``(row[at_field], id)``; the store takes it as ``after``."""
    return Cursor(
        "after", decode_time_token, lambda row: f"{row[at_field].isoformat()}|{row['id']}"
    )


async def page(
    request: PageRequest,
    filters: Mapping[str, object],
    fetch: Callable[..., Awaitable[Sequence[R]]],
    cursor: Cursor = BY_ID,
) -> tuple[list[R], str]:
    """One page of a list. ``fetch`` (a store's list method with its filters bound, e.g.
    ``functools.partial(store.quota_list, tenant, **filters)``) is called with the cursor's
    argument and ``limit`` one row more than the page, which tells whether there is a next
    page without counting.

    Returns:
        ``(rows of the page, next_page_token)``; the token is ``""`` on the last page.

    Raises:
        InvalidArgument: a negative page size, or a token of other filters or another list.
    """
    size = page_size(request.page_size)
    after = cursor.decode(request.page_token, filters)
    rows = list(await fetch(**{cursor.arg: after, "limit": size + 1}))
    token = encode_token(cursor.last(rows[size - 1]), filters) if len(rows) > size else ""
    return rows[:size], token
