"""The tracing switch (stella_orchestrator.telemetry, orchestrator_grpckit.tracing): off
unless the standard OTEL_* variables ask for it; on, spans reach a real OTLP/gRPC receiver
with the right service name and parents, and JSON logs carry the trace id.

A tracer provider can be installed once per process, so the "on" cases run a child process
(``_tracing_child.py``) against an in-process OTLP receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry import trace

from orchestrator_grpckit import TokenVerifier, server_interceptors, setup_tracing
from stella_orchestrator.telemetry import configure_tracing, tracing_exporter
from tests.otlp_receiver import OtlpReceiver
from tests.unit.grpckit.conftest import SECRET

ROOT = Path(__file__).resolve().parents[3]
ENDPOINT = "http://127.0.0.1:4317"
OTEL_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ENDPOINT}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, None),
    ],
)
def test_the_standard_variables_switch_tracing(env: dict[str, str], expected: str | None) -> None:
    assert tracing_exporter(env) == expected


def test_off_when_unset_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)
    assert configure_tracing("probe", environ={}) is None
    assert setup_tracing("probe") is None
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    chain = [type(i).__name__ for i in server_interceptors(TokenVerifier(SECRET, None))]
    assert "TracingInterceptor" not in chain


def test_on_the_server_span_is_outermost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT)
    verifier = TokenVerifier(SECRET, None)
    assert [type(i).__name__ for i in server_interceptors(verifier)] == [
        "TracingInterceptor",
        "RequestIdInterceptor",
        "ObservabilityInterceptor",
        "ErrorInterceptor",
        "AuthInterceptor",
    ]
    assert "TracingInterceptor" not in [
        type(i).__name__ for i in server_interceptors(verifier, tracing=False)
    ]


def _run_child(receiver: OtlpReceiver, **extra: str) -> tuple[dict[str, str], list[str], str]:
    env = {k: v for k, v in os.environ.items() if k not in OTEL_VARS}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, **extra}
    child = [sys.executable, "-m", "tests.unit.grpckit._tracing_child"]
    done = subprocess.run(child, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    result = json.loads(next(line for line in lines if line.startswith("RESULT "))[7:])
    logs = [line for line in lines if line.startswith("{")]
    return result, logs, done.stderr


@pytest.mark.timeout(180)
def test_on_spans_reach_the_otlp_receiver_parented_and_logged() -> None:
    with OtlpReceiver() as receiver:
        seen, logs, stderr = _run_child(receiver)
        # shutdown() flushed before the child exited: everything is here already.
        spans = receiver.spans()
    assert seen["installed"] == "True"
    by_name = {s.name: s for s in spans}
    assert {"caller", "child-client", "test.v1.Probe/Echo", "test.v1.Probe/Chat"} <= set(by_name)
    assert "orphan-client" not in by_name, "a client span without a parent must be dropped"
    assert {s.service for s in spans} == {"orchestrator-probe"}
    caller = by_name["caller"]
    assert caller.trace_id == seen["trace_id"]
    for name in ("test.v1.Probe/Echo", "test.v1.Probe/Chat", "child-client"):
        span = by_name[name]
        assert (span.trace_id, span.parent_span_id) == (caller.trace_id, caller.span_id), name
    echo = by_name["test.v1.Probe/Echo"]
    assert echo.kind == 2  # SPAN_KIND_SERVER
    assert echo.attributes["rpc.service"] == "test.v1.Probe"
    assert echo.attributes["rpc.grpc.status_code"] == 0
    # JSON logs: the caller's line and the server's access lines carry the trace.
    records = [json.loads(line) for line in logs]
    inside = next(r for r in records if r["msg"] == "inside the caller span")
    assert (inside["trace_id"], inside["span_id"]) == (seen["trace_id"], seen["caller_span_id"])
    access = [r for r in records if r["logger"] == "orchestrator_grpckit.access"]
    assert {r["method"] for r in access} == {"/test.v1.Probe/Echo", "/test.v1.Probe/Chat"}
    assert all(r["trace_id"] == seen["trace_id"] for r in access)
    assert {r["span_id"] for r in access} == {echo.span_id, by_name["test.v1.Probe/Chat"].span_id}
    # A client that cancels a stream causes no error line (stdout holds the JSON log).
    assert not [r for r in records if r["level"] in ("ERROR", "CRITICAL")], records
    assert "Failed to detach" not in stderr + "\n".join(logs)


@pytest.mark.timeout(180)
def test_otel_service_name_overrides_the_service_name() -> None:
    with OtlpReceiver() as receiver:
        _run_child(receiver, OTEL_SERVICE_NAME="probe-renamed")
        spans = receiver.spans()
    assert spans
    assert {s.service for s in spans} == {"probe-renamed"}


@pytest.mark.timeout(180)
def test_the_standard_sampler_variable_applies() -> None:
    with OtlpReceiver() as receiver:
        seen, _logs, _stderr = _run_child(receiver, OTEL_TRACES_SAMPLER="always_off")
        spans = receiver.spans()
    assert seen["installed"] == "True"
    assert spans == []
