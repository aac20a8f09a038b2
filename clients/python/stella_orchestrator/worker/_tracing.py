"""The handler's span: a child of the job's ``trace_parent`` (docs/tracing.md).

The same span in the Go (``worker/tracing.go``) and Rust (``src/tracing.rs``) SDKs: name
``stella.job.run``, kind CONSUMER, attributes ``stella.job.id``, ``stella.job.type``,
``stella.job.attempt``, ``stella.tenant``, ``stella.worker.id``, ``stella.sdk``; status ERROR
with the error class when the handler fails. It is current while the handler runs, so the
handler's own instrumented calls (HTTP clients...) nest under it.

Costless when tracing is off: without a tracer provider (``Worker.run_forever`` installs
one when the ``OTEL_*`` variables ask for it, see :mod:`stella_orchestrator.telemetry`) the
API's tracer is a no-op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stella_orchestrator import telemetry
from stella_orchestrator.worker._errors import classify
from stella_orchestrator.worker._job import Job

SPAN_NAME = "stella.job.run"


@contextmanager
def handler_span(job: Job, worker_id: str, tracer: Any = None) -> Iterator[Any]:
    """Run the block as the handler of ``job``, inside its span (a no-op without tracing).

    Args:
        job: The job being handled.
        worker_id: The worker's id (an attribute).
        tracer: The tracer (default: the global provider's, when one is installed).

    Yields:
        The span, or ``None`` when tracing is off.
    """
    trace = telemetry.trace
    if trace is None or (tracer is None and not telemetry.tracing_installed()):
        yield None
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    tracer = tracer or trace.get_tracer("stella_orchestrator.worker")
    with tracer.start_as_current_span(
        SPAN_NAME,
        context=telemetry.context_from_traceparent(job.trace_parent, job.trace_state),
        kind=SpanKind.CONSUMER,
        attributes={
            "stella.job.id": job.id,
            "stella.job.type": job.job_type,
            "stella.job.attempt": job.attempt,
            "stella.tenant": job.tenant,
            "stella.worker.id": worker_id,
            "stella.sdk": "python",
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except asyncio.CancelledError:
            span.set_attribute("stella.job.outcome", "canceled")
            raise
        except Exception as exc:
            info = classify(exc)
            span.set_attribute("stella.job.outcome", "failed")
            span.set_attribute("stella.error.class", info.error_class)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, info.error_class))
            raise
        span.set_attribute("stella.job.outcome", "succeeded")
