"""Tracing for the services: one setup call, a server span per RPC, driver spans.

Design note. :func:`setup_tracing` is what every ``__main__`` calls (the gateway too): it
installs the provider through :mod:`stella_orchestrator.telemetry` (the switches are the
standard ``OTEL_*`` variables, shared with the Python worker SDK; docs/tracing.md) and, when
tracing is on, instruments psycopg and redis so each statement and command becomes a client
span of the RPC that issued it.

Background loops (dispatcher polls, watchdog, leader re-checks) issue statements outside any
RPC; as roots those would be a trace per statement, every second, in every replica. The
sampler therefore drops client spans that have no parent (:class:`NoOrphanClientSpans`): a
statement is traced when something traced caused it.

The server span is our own scope (:class:`TracingInterceptor`, outermost in the chain) rather
than opentelemetry-instrumentation-grpc's aio interceptor: that one detaches its context in
the stream generator's finaliser, which runs in another ``contextvars`` context when a client
cancels a stream, and logs "Failed to detach context" each time. A grpc.aio RPC runs in its
own task, so a context attached for it never leaks; the scope detaches only when it still is
the current one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from orchestrator_grpckit._interceptors import (
    PUBLIC_METHOD_PREFIXES,
    _metadata_value,
    _ScopeInterceptor,
    finishing_with_code,
    split_method,
)
from stella_orchestrator.telemetry import (
    Tracing,
    configure_tracing,
    context_from_traceparent,
    traceparent,
    tracestate,
    tracing_enabled,
    tracing_installed,
)

SERVICE_NAME_PREFIX = "orchestrator-"
"""``service.name`` is this prefix and the service's name (``orchestrator-scheduler``)."""

__all__ = [
    "SERVICE_NAME_PREFIX",
    "NoOrphanClientSpans",
    "TracingInterceptor",
    "context_from_traceparent",
    "current_trace",
    "setup_tracing",
    "tracing",
    "tracing_installed",
]

_tracer = trace.get_tracer("orchestrator_grpckit")

# Server span status per the OpenTelemetry RPC conventions: only these codes are the
# server's fault; NOT_FOUND, INVALID_ARGUMENT... are the caller's and leave the span unset.
_SERVER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class NoOrphanClientSpans(Sampler):
    """Drops CLIENT spans without a parent (driver calls of background loops); everything
    else goes to the wrapped sampler (``OTEL_TRACES_SAMPLER``'s choice).

    Args:
        base: The sampler that decides all other spans.
    """

    def __init__(self, base: Sampler) -> None:
        self._base = base

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Sequence[Any] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self._base.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoOrphanClientSpans{{{self._base.get_description()}}}"


def setup_tracing(service_name: str, *, drivers: bool = True) -> Tracing | None:
    """Turn tracing on for this process when the ``OTEL_*`` variables ask for it.

    Args:
        service_name: The service (``scheduler``); ``service.name`` is
            ``orchestrator-scheduler`` unless ``OTEL_SERVICE_NAME`` is set.
        drivers: Also trace psycopg statements and redis commands.

    Returns:
        The handle whose ``shutdown()`` flushes queued spans, or ``None`` (tracing off).
    """
    tracing = configure_tracing(SERVICE_NAME_PREFIX + service_name, sampler=NoOrphanClientSpans)
    if tracing is not None and drivers:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        # skip_dep_check: the instrumentors compare distribution names (psycopg vs
        # psycopg[binary]) and would refuse a working install.
        PsycopgInstrumentor().instrument(skip_dep_check=True)
        RedisInstrumentor().instrument(skip_dep_check=True)
    return tracing


@contextmanager
def tracing(service_name: str, *, drivers: bool = True) -> Iterator[Tracing | None]:
    """:func:`setup_tracing` for a ``with`` block whose end flushes the queued spans.

    Args:
        service_name: The default ``service.name``.
        drivers: Also trace psycopg statements and redis commands.

    Yields:
        The handle, or ``None`` when tracing is off.
    """
    handle = setup_tracing(service_name, drivers=drivers)
    try:
        yield handle
    finally:
        if handle is not None:
            handle.shutdown()


class _MetadataGetter:
    """Reads a propagation header from gRPC invocation metadata."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = _metadata_value(carrier, key)
        return None if value is None else [value]

    def keys(self, carrier: Any) -> list[str]:
        return [name for name, _ in carrier or ()]


_GETTER = _MetadataGetter()


class TracingInterceptor(_ScopeInterceptor):
    """One SERVER span per RPC (not for health and reflection), child of the caller's
    ``traceparent`` metadata, current while the servicer runs.

    Name ``<package.Service>/<Method>``; attributes ``rpc.system``, ``rpc.service``,
    ``rpc.method``, ``rpc.grpc.status_code``; status ERROR for the codes that are the
    server's fault.
    """

    def _applies(self, method: str) -> bool:
        return not method.startswith(PUBLIC_METHOD_PREFIXES)

    @asynccontextmanager
    async def _scope(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[None]:
        service, name = split_method(method)
        parent = propagate.extract(context.invocation_metadata(), getter=_GETTER)
        span = _tracer.start_span(
            method.lstrip("/"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        )
        active = trace.set_span_in_context(span, parent)
        token = otel_context.attach(active)

        def finish(code: grpc.StatusCode) -> None:
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code in _SERVER_ERROR_CODES:
                span.set_status(Status(StatusCode.ERROR, code.name))
            span.end()
            # In a stream's finaliser (client cancelled) this runs in another context, where
            # the token cannot be reset: nothing to undo there.
            if otel_context.get_current() is active:
                otel_context.detach(token)

        with finishing_with_code(context, finish):
            yield


def tracing_interceptor() -> grpc.aio.ServerInterceptor | None:
    """The server span interceptor when tracing is on, else ``None`` (no cost at all)."""
    return TracingInterceptor() if tracing_enabled() else None


def current_trace() -> tuple[str, str]:
    """The current span's W3C ``traceparent`` and ``tracestate`` (``("", "")`` without one),
    e.g. to store with a job so that work done later joins the trace of its submission."""
    return traceparent(), tracestate()
