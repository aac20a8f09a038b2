"""OpenTelemetry tracing switched by the standard ``OTEL_*`` variables (docs/tracing.md).

One setup for every Python process of the project, the services (through
``orchestrator_grpckit.tracing``) and the worker SDK alike, so they agree on what turns
tracing on:

* on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set,
  or ``OTEL_TRACES_EXPORTER`` names ``otlp`` or ``console``;
* off when none is set, when ``OTEL_TRACES_EXPORTER=none`` or ``OTEL_SDK_DISABLED=true``,
  and when ``opentelemetry-sdk`` is not installed. Off means no provider is installed: the
  API's no-op tracer makes every span free.

When on, a ``TracerProvider`` with ``service.name`` (``OTEL_SERVICE_NAME`` overrides the
caller's default; ``OTEL_RESOURCE_ATTRIBUTES`` adds to it), the sampler of
``OTEL_TRACES_SAMPLER`` (default: parent-based, always on) and a ``BatchSpanProcessor`` in
front of the OTLP/gRPC exporter, which reads its own ``OTEL_EXPORTER_OTLP_*`` settings
(endpoint, headers, timeout, TLS). :meth:`Tracing.shutdown` flushes what is queued.

:func:`traceparent` and :func:`context_from_traceparent` carry a span context through the
job ledger as a W3C ``traceparent`` (``JobSpec.trace_parent``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Tracing",
    "configure_tracing",
    "context_from_traceparent",
    "traceparent",
    "tracestate",
    "tracing_enabled",
    "tracing_exporter",
    "tracing_installed",
]

_log = logging.getLogger("stella_orchestrator.telemetry")

try:  # the API ships with the project; the guard keeps a vendored SDK importable without it
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised only without opentelemetry-api
    trace = None

_EXPORTERS = ("otlp", "console")


def tracing_exporter(environ: Mapping[str, str] | None = None) -> str | None:
    """Which span exporter the ``OTEL_*`` variables ask for: ``"otlp"``, ``"console"`` or
    ``None`` (tracing off).

    Args:
        environ: Variables to read (default ``os.environ``).

    Returns:
        The exporter name, or ``None``.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    chosen = [e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    chosen = [e for e in chosen if e]
    if "none" in chosen:
        return None
    for name in _EXPORTERS:
        if name in chosen:
            return name
    if chosen:
        _log.warning(
            "OTEL_TRACES_EXPORTER=%s is not supported (otlp, console); tracing off", chosen
        )
        return None
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return "otlp" if endpoint and endpoint.strip() else None


def tracing_installed() -> bool:
    """Whether a tracer provider is installed (by :func:`configure_tracing` or by the
    application), i.e. whether spans are recorded at all."""
    return trace is not None and not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider
    )


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables turn tracing on (see the module note)."""
    return tracing_exporter(environ) is not None


@dataclass
class Tracing:
    """The installed provider; :meth:`shutdown` flushes queued spans and stops exporting."""

    provider: Any
    service_name: str

    def shutdown(self) -> None:
        """Flush and stop (idempotent)."""
        provider, self.provider = self.provider, None
        if provider is not None:
            provider.shutdown()


def configure_tracing(
    service_name: str,
    *,
    environ: Mapping[str, str] | None = None,
    sampler: Callable[[Any], Any] | None = None,
) -> Tracing | None:
    """Install a global ``TracerProvider`` when the ``OTEL_*`` variables ask for one.

    Does nothing (returns ``None``) when tracing is off, when ``opentelemetry-sdk`` is not
    installed, or when the application already installed a provider of its own.

    Args:
        service_name: ``service.name`` unless ``OTEL_SERVICE_NAME`` is set.
        environ: Variables to read (default ``os.environ``).
        sampler: Wraps the sampler chosen by ``OTEL_TRACES_SAMPLER`` (e.g. to drop spans
            that have no parent).

    Returns:
        The handle to shut the provider down with, or ``None``.
    """
    env = os.environ if environ is None else environ
    exporter_name = tracing_exporter(env)
    if exporter_name is None or trace is None:
        return None
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    except ImportError:
        _log.warning("tracing is configured but opentelemetry-sdk is not installed; tracing off")
        return None
    if tracing_installed():
        return None  # the application set up its own
    name = (env.get("OTEL_SERVICE_NAME") or "").strip() or service_name
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES; our attributes win, so the name is
    # resolved above with OTEL_SERVICE_NAME first.
    resource = Resource.create({SERVICE_NAME: name})
    # The sampler OTEL_TRACES_SAMPLER names is what a provider built without one uses.
    base = TracerProvider(shutdown_on_exit=False).sampler
    provider = TracerProvider(resource=resource, sampler=sampler(base) if sampler else base)
    exporter: SpanExporter
    if exporter_name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporter = ConsoleSpanExporter(service_name=name)
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _log.info(
        "tracing on: service.name %s, exporter %s",
        name,
        exporter_name,
        extra={"otel_service_name": name, "otel_exporter": exporter_name},
    )
    return Tracing(provider, name)


def traceparent(span: Any = None) -> str:
    """The W3C ``traceparent`` of ``span`` (default: the current span), ``""`` if none.

    Args:
        span: An OpenTelemetry span, or ``None`` for the current one.

    Returns:
        ``00-<trace id>-<span id>-<flags>``, or ``""`` when there is no valid span.
    """
    if trace is None:
        return ""
    current = span if span is not None else trace.get_current_span()
    ctx = current.get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def tracestate(span: Any = None) -> str:
    """The W3C ``tracestate`` of ``span`` (default: the current span), ``""`` if none."""
    if trace is None:
        return ""
    current = span if span is not None else trace.get_current_span()
    ctx = current.get_span_context()
    return ctx.trace_state.to_header() if ctx.is_valid else ""


def context_from_traceparent(value: str, state: str = "") -> Any:
    """An OpenTelemetry context whose parent is the W3C ``traceparent`` ``value``.

    Args:
        value: ``traceparent`` header value (``""`` or malformed: no parent).
        state: The accompanying ``tracestate``.

    Returns:
        A context for ``tracer.start_as_current_span(..., context=...)``; a fresh root
        context when ``value`` does not parse (so a span never joins an unrelated trace).
    """
    if trace is None:
        return None
    carrier = {"traceparent": value} if value else {}
    if value and state:
        carrier["tracestate"] = state
    # An empty context, not the current one: the job's trace is the parent, whatever runs.
    return TraceContextTextMapPropagator().extract(carrier, context=otel_context.Context())
