"""The Python SDK's handler span (stella_orchestrator.worker._tracing): a child of the job's
trace_parent with the job's attributes, recording how the handler ended; a no-op without a
tracer provider. An SDK provider of the test's own records the spans in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from stella_orchestrator.worker import Job, UpstreamThrottled
from stella_orchestrator.worker._tracing import SPAN_NAME, handler_span
from tests.unit.sdk.test_sdk_job import _assignment


@pytest.fixture
def recorded() -> Iterator[tuple[object, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def test_the_span_is_a_child_of_the_jobs_trace_parent(recorded) -> None:
    tracer, exporter = recorded
    job = Job.from_assignment(_assignment())
    with handler_span(job, "w-1", tracer) as span:
        assert span.is_recording()
    (done,) = exporter.get_finished_spans()
    assert (done.name, done.kind) == (SPAN_NAME, SpanKind.CONSUMER)
    assert f"{done.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{done.parent.span_id:016x}" == "b7ad6b7169203331"
    assert done.context.trace_state.get("rojo") == "00f067aa0ba902b7"
    assert dict(done.attributes) == {
        "stella.job.id": job.id,
        "stella.job.type": "advisory.ingest",
        "stella.job.attempt": 2,
        "stella.tenant": "acme",
        "stella.worker.id": "w-1",
        "stella.sdk": "python",
        "stella.job.outcome": "succeeded",
    }


def test_a_failure_and_a_cancellation_are_recorded(recorded) -> None:
    tracer, exporter = recorded
    job = Job.from_assignment(_assignment(trace_parent=""))
    with pytest.raises(UpstreamThrottled), handler_span(job, "w-1", tracer):
        raise UpstreamThrottled("429 from upstream", retry_after_s=1)
    with pytest.raises(asyncio.CancelledError), handler_span(job, "w-1", tracer):
        raise asyncio.CancelledError
    failed, canceled = exporter.get_finished_spans()
    assert failed.parent is None  # no trace_parent: a root of its own
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["stella.job.outcome"] == "failed"
    assert failed.attributes["stella.error.class"] == "http_429"
    assert canceled.attributes["stella.job.outcome"] == "canceled"


def test_off_without_a_provider() -> None:
    with handler_span(Job.from_assignment(_assignment()), "w-1") as span:
        assert span is None
