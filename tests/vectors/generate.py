"""Author the shared SDK vectors from the Python SDK (the reference implementation).

    .venv/bin/python tests/vectors/generate.py      # rewrite the *.json files here

Run it only to add cases; a change to an existing expected value means an SDK changed its
wire behaviour. Independent anchors keep the reference honest: the RFC 8785 sample
(section 3.2.2), FIPS 180-2 sha256 examples and the splitmix64.c reference outputs.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import grpc

from stella_orchestrator.worker import (
    ERROR_CLASSES,
    NON_RETRYABLE_CODES,
    Backoff,
    JobFailure,
    ParseError,
    SchemaMismatch,
    SplitMix64,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamUnavailable,
    bytes_digest,
    canonical_json,
)
from stella_orchestrator.worker._session import LEASE_LOST_REASONS

HERE = Path(__file__).resolve().parent


def _write(name: str, doc: dict[str, object]) -> None:
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    (HERE / name).write_text(text, encoding="utf-8")


def artifacts() -> None:
    cases = [
        ("empty", b""),
        ("abc (FIPS 180-2)", b"abc"),
        ("two blocks (FIPS 180-2)", b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        ("all byte values", bytes(range(256))),
        ("utf-8 text with newline", "advisory é€😀\n".encode()),
        ("ndjson", b'{"id":"CVE-2024-0001"}\n{"id":"CVE-2024-0002"}\n'),
    ]
    out: list[dict[str, object]] = [
        {"name": n, "data_hex": d.hex(), "size_bytes": len(d), "digest": bytes_digest(d)}
        for n, d in cases
    ]
    big = b"a" * 1_000_000
    assert hashlib.sha256(big).hexdigest().startswith("cdc76e5c")  # FIPS 180-2, one million 'a'
    out.append(
        {
            "name": "one million 'a' (FIPS 180-2)",
            "repeat": {"byte": 97, "count": len(big)},
            "size_bytes": len(big),
            "digest": bytes_digest(big),
        }
    )
    _write("artifact_digests.json", {"cases": out})


def canonical() -> None:
    inputs = [
        ("scalars", '[null, true, false, 0, -0, 1, -17, 0.5, ""]'),
        (
            "RFC 8785 3.2.2 sample",
            '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
            ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
            ' "literals": [null, true, false]}',
        ),
        (
            "number forms",
            "[1.0, 100, 1e20, 1e21, 1e-6, 1e-7, 1.5e-5, 123456789012345680000, 0.1,"
            " 9007199254740991, -3.25, 5e-324, 1.7976931348623157e308]",
        ),
        (
            "key order is UTF-16",
            '{"\\ufffd": 1, "\\ud83d\\ude00": 2, "b": 3, "a": 4, "A": 5, "": 6}',
        ),
        ("escapes", '{"k": "q\\"b\\\\ \\n\\t\\r\\b\\f \\u0001\\u001f \\u007f /"}'),
        (
            "event job.succeeded",
            '{"seq": 42, "type": "job.succeeded", "tenant": "acme",'
            ' "job_id": "0193a5b2-7c1d-7000-8000-000000000001", "run_id": null,'
            ' "occurred_at": "2026-11-27T17:30:00.123456Z", "reason": "",'
            ' "data": {"worker_id": "host-1/pid-42", "attempt": 1,'
            ' "result_digest":'
            ' "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",'
            ' "duration_s": 0.25}}',
        ),
        (
            "event job.retrying",
            '{"type": "job.retrying", "seq": 43, "tenant": "acme", "reason": "http_429",'
            ' "data": {"error": {"class": "http_429", "retryable": true, "retry_after_s": 1.5,'
            ' "message": "nvd throttled «advisories»"}, "not_before": "2026-11-27T17:30:02Z",'
            ' "attempt": 2, "labels": {"z": [], "y": {}, "x": [1, [2, [3]]]}}}',
        ),
    ]
    out = []
    for name, text in inputs:
        value = json.loads(text)
        canon = canonical_json(value)
        out.append(
            {
                "name": name,
                "input": text,
                "canonical": canon.decode("utf-8"),
                "digest": bytes_digest(canon),
            }
        )
    _write("canonical_json.json", {"cases": out})


def backoff() -> None:
    generator = SplitMix64(1234567)
    reference = [generator.next_u64() for _ in range(5)]
    # splitmix64.c reference outputs for seed 1234567
    assert reference[0] == 6457827717110365317
    assert reference[4] == 16408922859458223821
    cases = []
    for seed, initial, cap, multiplier in (
        (0, 0.1, 10.0, 2.0),
        (42, 0.1, 10.0, 2.0),
        (1234567, 0.1, 10.0, 2.0),
        (18446744073709551615, 0.25, 30.0, 3.0),
    ):
        b = Backoff(initial_s=initial, cap_s=cap, multiplier=multiplier, rng=SplitMix64(seed))
        delays = [b.next_delay() for _ in range(14)]
        cases.append(
            {
                "seed": str(seed),
                "initial_s": initial,
                "cap_s": cap,
                "multiplier": multiplier,
                "ceilings": [b.ceiling(n) for n in range(14)],
                "delays": [repr(d) for d in delays],
                "delay_bits": [struct.pack(">d", d).hex() for d in delays],
            }
        )
    _write(
        "backoff.json",
        {
            "prng": "splitmix64; float = (next_u64 >> 11) * 2**-53; delay = ceiling * float;"
            " ceiling(n) = min(cap_s, initial_s * multiplier**min(n, 64))",
            "splitmix64_reference": {"seed": "1234567", "outputs": [str(x) for x in reference]},
            "cases": cases,
        },
    )


def errors() -> None:
    from stella.orchestrator.v1 import common_pb2

    failures = [
        ("upstream_throttled", UpstreamThrottled()),
        ("upstream_unavailable", UpstreamUnavailable()),
        ("upstream_rejected", UpstreamRejected()),
        ("parse_error", ParseError()),
        ("schema_mismatch", SchemaMismatch()),
        ("job_failure", JobFailure()),
    ]
    codes = []
    for code in grpc.StatusCode:
        for reason in ("", "lease_lost") if code == grpc.StatusCode.FAILED_PRECONDITION else ("",):
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                kind = "permission"
            elif code == grpc.StatusCode.INVALID_ARGUMENT:
                kind = "invalid"
            elif reason in LEASE_LOST_REASONS:
                kind = "lease_lost"
            else:
                kind = "transient"
            codes.append(
                {
                    "code": code.name,
                    "number": code.value[0],
                    "reason": reason,
                    "kind": kind,
                    "reconnect": code not in NON_RETRYABLE_CODES,
                }
            )
    _write(
        "errors.json",
        {
            "error_classes": {
                label: {"enum": common_pb2.ErrorClass.Name(v), "number": v}
                for label, v in ERROR_CLASSES.items()
            },
            "job_failures": [
                {"kind": k, "class": f.error_class, "retryable": f.retryable} for k, f in failures
            ],
            "lease_lost_reasons": sorted(LEASE_LOST_REASONS),
            "status_codes": codes,
        },
    )


if __name__ == "__main__":
    artifacts()
    canonical()
    backoff()
    errors()
