"""Canonical JSON (RFC 8785) and ``sha256:`` digests, as the server and the Go/Rust SDKs
compute them: object keys sorted by UTF-16 code units, no whitespace, UTF-8 without
``\\u`` escapes except for control characters, numbers in ECMAScript form (``1.0`` → ``1``,
``1e21`` → ``1e+21``). The SDK depends on generated code only, so this is its own
implementation; the shared vectors in ``tests/unit/sdk`` keep it in step with the server's.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

MAX_JSON_DEPTH: Final = 128
"""Deepest nesting accepted (the server refuses deeper documents too)."""


def _number(value: float) -> str:
    # ECMAScript Number::toString over the shortest round-trip digits, which repr() gives.
    if value == 0:
        return "0"
    if value < 0:
        return "-" + _number(-value)
    _, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite: checked by the caller
    digits = "".join(str(d) for d in digit_tuple)
    k = len(digits)
    n = exponent + k  # value = 0.<digits> * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    e = n - 1
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def _utf16(key: str) -> bytes:
    # RFC 8785 sorts keys by UTF-16 code units, which differs from code points above U+FFFF.
    return key.encode("utf-16-be", "surrogatepass")


def _write(value: object, depth: int, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True or value is False:
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"JSON has no form for {value!r}")
        out.append(_number(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        if depth >= MAX_JSON_DEPTH:
            raise ValueError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
        if any(not isinstance(key, str) for key in value):
            raise ValueError("JSON object keys must be strings")
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16)):
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _write(value[key], depth + 1, out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        if depth >= MAX_JSON_DEPTH:
            raise ValueError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, depth + 1, out)
        out.append("]")
    else:
        raise ValueError(f"{type(value).__name__} is not a JSON value")


def canonical_json(value: object) -> bytes:
    """Serialize a JSON value to canonical (RFC 8785) UTF-8 bytes.

    Args:
        value: ``None``, ``bool``, ``int``, ``float``, ``str``, a mapping with ``str`` keys or
            a list/tuple of those.

    Returns:
        The canonical bytes.

    Raises:
        ValueError: NaN or an infinity, a non-string key, a non-JSON type, a lone surrogate,
            or nesting deeper than :data:`MAX_JSON_DEPTH`.
    """
    out: list[str] = []
    _write(value, 0, out)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("JSON string contains a lone UTF-16 surrogate") from exc


def bytes_digest(data: bytes) -> str:
    """``"sha256:" + lowercase hex`` of raw bytes (artifact content addresses)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def json_digest(value: object) -> str:
    """``"sha256:" + lowercase hex`` of the canonical JSON of ``value``.

    Raises:
        ValueError: As :func:`canonical_json`.
    """
    return bytes_digest(canonical_json(value))


def result_digest(result: Mapping[str, object] | None) -> str:
    """The ``Completion.result_digest`` of a handler result: ``""`` for ``None``, else
    :func:`json_digest` of the result.

    Raises:
        ValueError: As :func:`canonical_json`.
    """
    return "" if result is None else json_digest(result)
