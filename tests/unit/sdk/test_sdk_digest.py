"""Canonical JSON (RFC 8785) and sha256 digests: the vectors the server and the Go/Rust SDKs
share (tests/unit/core/test_core_digest.py holds the server's copy)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from stella_orchestrator.worker import bytes_digest, canonical_json, json_digest, result_digest

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


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
        # UTF-16 order: U+1F600 (surrogates D83D…) sorts before U+FFFD, unlike code points.
        ({"\ufffd": 1, "😀": 2}, '{"😀":2,"\ufffd":1}'.encode()),
    ],
)
def test_canonical_json_vectors(value: Any, expected: bytes) -> None:
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
def test_numbers_in_ecmascript_form(number: float, text: str) -> None:
    assert canonical_json(number) == text.encode()


def test_rfc8785_example() -> None:
    value = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    assert (
        canonical_json(value)
        == (
            '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
            '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
        ).encode()
    )


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), {1: "x"}, {"k": object()}, b"raw", "\ud800", {"d": {1, 2}}]
)
def test_non_json_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the type is the contract
        canonical_json(bad)


def test_depth_is_bounded() -> None:
    deep: Any = 0
    for _ in range(200):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper"):
        canonical_json(deep)


def test_digests() -> None:
    assert bytes_digest(b"") == EMPTY_SHA256
    assert bytes_digest(b"abc") == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert json_digest({}) == "sha256:" + hashlib.sha256(b"{}").hexdigest()
    assert json_digest({"b": [1.0, 2], "a": "x"}) == (
        "sha256:" + hashlib.sha256(b'{"a":"x","b":[1,2]}').hexdigest()
    )
    assert result_digest(None) == ""
    assert result_digest({"count": 3}) == json_digest({"count": 3.0})
