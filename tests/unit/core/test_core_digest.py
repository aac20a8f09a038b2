"""Canonical JSON (RFC 8785) and payload digests."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator_core import (
    DIGEST_RE,
    MAX_JSON_DEPTH,
    InvalidArgument,
    canonical_json,
    payload_digest,
    validate_digest,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, b"null"),
        (True, b"true"),
        (False, b"false"),
        (0, b"0"),
        (-17, b"-17"),
        (2**70, b"1180591620717411303424"),
        ("", b'""'),
        ([], b"[]"),
        ({}, b"{}"),
        ((1, "a"), b'[1,"a"]'),
        ({"b": 1, "a": 2}, b'{"a":2,"b":1}'),
        (
            {"a": {"d": [3, {"z": 1, "y": None}], "c": True}},
            b'{"a":{"c":true,"d":[3,{"y":null,"z":1}]}}',
        ),
        ({"k": "é€😀"}, '{"k":"é€😀"}'.encode()),
        ({"k": 'q"b\\'}, b'{"k":"q\\"b\\\\"}'),
        ({"k": "\n\t\x01\x7f"}, b'{"k":"\\n\\t\\u0001\x7f"}'),
    ],
)
def test_canonical_json_cases(value: Any, expected: bytes) -> None:
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (-3.0, "-3"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (4.50, "4.5"),
        (2e-3, "0.002"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-5, "0.000015"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1e30, "1e+30"),
        (123456789.125, "123456789.125"),
        (333333333.33333329, "333333333.3333333"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
    ],
)
def test_numbers_use_ecmascript_form(number: float, text: str) -> None:
    assert canonical_json(number) == text.encode()


def test_rfc8785_example_object() -> None:
    # RFC 8785 §3.2.2 input (parsed) and its canonical output.
    value = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_json(value) == expected


def test_keys_sort_by_utf16_code_units() -> None:
    # RFC 8785 §3.2.3: the emoji (surrogate pair D83D..) sorts before U+FB33.
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    out = canonical_json(dict.fromkeys(keys, 0)).decode()
    assert list(json.loads(out)) == [
        "\r",
        "1",
        "\u0080",
        "\u00f6",
        "\u20ac",
        "\U0001f600",
        "\ufb33",
    ]


def test_key_order_does_not_change_the_bytes() -> None:
    a = {"x": 1, "y": [1, 2], "z": {"p": 1, "q": 2}}
    b = {"z": {"q": 2, "p": 1}, "y": [1, 2], "x": 1}
    assert canonical_json(a) == canonical_json(b)
    assert payload_digest(a) == payload_digest(b)
    assert canonical_json([1, 2]) != canonical_json([2, 1])  # arrays keep their order


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (math.nan, "payload"),
        ({"a": [1, math.inf]}, "payload.a[1]"),
        ({"a": {"b": -math.inf}}, "payload.a.b"),
        ({1: "x"}, "payload"),
        ({"a": b"bytes"}, "payload.a"),
        ({"a": {1, 2}}, "payload.a"),
        ({"a": object()}, "payload.a"),
        ("\ud800", "payload"),  # lone surrogate
    ],
)
def test_rejects_non_json_with_the_offending_path(value: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        canonical_json(value)
    assert info.value.violations[0].field == field


def test_rejects_excessive_nesting() -> None:
    deep: Any = 1
    for _ in range(MAX_JSON_DEPTH + 1):
        deep = [deep]
    with pytest.raises(InvalidArgument, match="nests deeper"):
        canonical_json(deep)
    ok: Any = 1
    for _ in range(MAX_JSON_DEPTH):
        ok = [ok]
    assert canonical_json(ok) == b"[" * MAX_JSON_DEPTH + b"1" + b"]" * MAX_JSON_DEPTH


def test_payload_digest_is_sha256_of_canonical_bytes() -> None:
    value = {"b": 2.0, "a": "é"}
    digest = payload_digest(value)
    assert digest == "sha256:" + hashlib.sha256('{"a":"é","b":2}'.encode()).hexdigest()
    assert DIGEST_RE.match(digest)
    assert payload_digest({}) == (
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    assert payload_digest({"a": 1}) != payload_digest({"a": 2})


def test_validate_digest() -> None:
    good = "sha256:" + "0" * 64
    assert validate_digest(good, "payload_digest") == good
    for bad in ["sha256:" + "A" * 64, "sha256:" + "0" * 63, "md5:" + "0" * 64, "0" * 64, ""]:
        with pytest.raises(InvalidArgument) as info:
            validate_digest(bad, "artifact.digest")
        assert info.value.violations[0].field == "artifact.digest"


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def _same_json(decoded: Any, original: Any) -> bool:
    # JSON numbers are IEEE doubles (RFC 8785): an integral float comes back as an int whose
    # digits are the shortest round-trip form, so compare it as a double.
    if isinstance(original, float):
        return isinstance(decoded, int | float) and float(decoded) == original
    if isinstance(original, list):
        return (
            isinstance(decoded, list)
            and len(decoded) == len(original)
            and all(_same_json(d, o) for d, o in zip(decoded, original, strict=True))
        )
    if isinstance(original, dict):
        return (
            isinstance(decoded, dict)
            and decoded.keys() == original.keys()
            and all(_same_json(decoded[k], original[k]) for k in original)
        )
    return type(decoded) is type(original) and bool(decoded == original)


@given(_json)
def test_canonical_json_round_trips_through_the_json_parser(value: Any) -> None:
    encoded = canonical_json(value)
    decoded = json.loads(encoded)
    assert _same_json(decoded, value)  # no value is lost
    assert canonical_json(decoded) == encoded  # idempotent: re-encoding gives the same bytes
