"""Canonical JSON and payload digests.

``canonical_json`` follows RFC 8785 (JCS) so the Go and Rust SDKs can produce the same bytes:
object keys sorted by UTF-16 code units, no whitespace, UTF-8 without ``\\u`` escapes except
for control characters, numbers in ECMAScript ``Number.prototype.toString`` form (so ``1.0``
is ``1`` and ``1e21`` is ``1e+21``). NaN and infinities have no JSON form and are refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

from orchestrator_core.errors import FieldViolation, InvalidArgument

__all__ = [
    "DIGEST_RE",
    "MAX_JSON_DEPTH",
    "canonical_json",
    "payload_digest",
    "validate_digest",
]

DIGEST_RE: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
"""A payload digest: ``sha256:`` and 64 lowercase hex digits."""

MAX_JSON_DEPTH: Final = 128
"""Deepest nesting of objects/arrays accepted (bounds recursion on hostile input)."""


def _format_number(value: float) -> str:
    # ECMAScript Number::toString on the shortest round-tripping digits (what repr() finds).
    if value == 0:
        return "0"  # also -0.0
    if value < 0:
        return "-" + _format_number(-value)
    _sign, digits_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite by construction
    digits = "".join(map(str, digits_tuple))
    k = len(digits)
    n = exponent + k  # value = 0.<digits> * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _encode(value: object, path: str, depth: int, out: list[str]) -> None:
    def fail(description: str) -> InvalidArgument:
        return InvalidArgument(f"{path} {description}", [FieldViolation(path, description)])

    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise fail(f"must be a finite number, got {value!r}")
        out.append(_format_number(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        if depth >= MAX_JSON_DEPTH:
            raise fail(f"nests deeper than {MAX_JSON_DEPTH} levels")
        for key in value:
            if not isinstance(key, str):
                raise fail(f"object keys must be strings, got {key!r}")
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(value[key], f"{path}.{key}", depth + 1, out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        if depth >= MAX_JSON_DEPTH:
            raise fail(f"nests deeper than {MAX_JSON_DEPTH} levels")
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, f"{path}[{i}]", depth + 1, out)
        out.append("]")
    else:
        raise fail(f"is not JSON (type {type(value).__name__})")


def canonical_json(value: object, field: str = "payload") -> bytes:
    """Serialize ``value`` to canonical JSON bytes (RFC 8785).

    Args:
        value: ``None``, ``bool``, ``int``, ``float``, ``str``, a ``Mapping`` with ``str``
            keys, or a sequence (list/tuple) of those.
        field: Name of the request field, used in violation paths (``payload.items[2]``).

    Returns:
        UTF-8 bytes.

    Raises:
        InvalidArgument: NaN/Infinity, a non-string key, a non-JSON type, a lone surrogate,
            or nesting deeper than :data:`MAX_JSON_DEPTH`.
    """
    out: list[str] = []
    _encode(value, field, 0, out)
    text = "".join(out)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        description = "contains a lone UTF-16 surrogate, which is not valid Unicode"
        raise InvalidArgument(
            f"{field} {description}", [FieldViolation(field, description)]
        ) from exc


def payload_digest(value: object, field: str = "payload") -> str:
    """Content digest of a JSON value: ``"sha256:" + hex(sha256(canonical_json(value)))``.

    Raises:
        InvalidArgument: As :func:`canonical_json`.
    """
    return "sha256:" + hashlib.sha256(canonical_json(value, field)).hexdigest()


def validate_digest(value: str, field: str) -> str:
    """Check that ``value`` is a digest as :data:`DIGEST_RE` describes.

    Returns:
        ``value`` unchanged.

    Raises:
        InvalidArgument: With a violation on ``field``.
    """
    if not isinstance(value, str) or not DIGEST_RE.fullmatch(value):
        shown = value if isinstance(value, str) else repr(value)
        if len(shown) > 80:
            shown = shown[:80] + "…"
        description = f"must be 'sha256:' followed by 64 lowercase hex digits, got '{shown}'"
        raise InvalidArgument(f"{field} {description}", [FieldViolation(field, description)])
    return value
