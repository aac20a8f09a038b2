"""grpc.aio server interceptors: request id, metrics + access log, error mapping, auth.

Every interceptor here is written as an async context manager ("scope") around the
servicer call; one wrapper applies a scope to all four RPC shapes, so unary and streaming
methods behave the same. Order, outermost first (see :func:`server_interceptors`):
tracing, request id, observability, errors, auth. Errors sits outside auth so a rejected
token becomes a proper UNAUTHENTICATED status with details, and observability sits outside
errors so it records the code the client really receives.
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import logging
import re
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from orchestrator_core.errors import OrchestratorError
from orchestrator_grpckit._auth import TokenVerifier, _current_principal_or_none, _set_principal
from orchestrator_grpckit._context import _set_request_id, current_request_id
from orchestrator_grpckit._status import internal_status, to_rpc_status

REQUEST_ID_HEADER = "x-request-id"
# Health probes and reflection must work without a token (kubelet, grpcurl discovery).
PUBLIC_METHOD_PREFIXES: tuple[str, ...] = ("/grpc.health.v1.Health/", "/grpc.reflection.")

# Incoming ids are echoed into logs and metadata; anything outside this set (or too long)
# is replaced rather than trusted, which rules out log injection.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")

_log = logging.getLogger("orchestrator_grpckit")
_access_log = logging.getLogger("orchestrator_grpckit.access")

# Latency buckets in seconds: sub-millisecond claims up to multi-second streams.
_DURATION_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

# The grpc-ecosystem names (go-grpc-middleware / py-grpc-prometheus), so stock gRPC
# dashboards and alerts apply. Labels are bounded: services and methods come from the
# registered protos (unknown paths never reach an interceptor), codes are the 17 gRPC codes.
STARTED_TOTAL = Counter(
    "grpc_server_started",
    "RPCs started on the server.",
    ("grpc_type", "grpc_service", "grpc_method"),
)
HANDLED_TOTAL = Counter(
    "grpc_server_handled",
    "RPCs completed on the server, whatever their status code.",
    ("grpc_type", "grpc_service", "grpc_method", "grpc_code"),
)
HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time until the server finished the RPC (streams: until the stream ended), in seconds.",
    ("grpc_type", "grpc_service", "grpc_method"),
    buckets=_DURATION_BUCKETS_S,
)

_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

_Scope = Callable[[grpc.aio.ServicerContext[Any, Any]], AbstractAsyncContextManager[None]]


def split_method(method: str) -> tuple[str, str]:
    """Split ``/pkg.Service/Method`` into ``("pkg.Service", "Method")``.

    Args:
        method: Full gRPC method path.

    Returns:
        Service and method names (``("unknown", method)`` if the path is malformed).
    """
    parts = method.split("/")
    if len(parts) != 3 or parts[0] or not parts[1] or not parts[2]:
        return "unknown", method
    return parts[1], parts[2]


class _ScopeInterceptor(grpc.aio.ServerInterceptor):
    """Base class: applies ``_scope`` around every handler ``_applies`` accepts."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        raw = handler_call_details.method
        method = raw.decode() if isinstance(raw, bytes) else raw
        if handler is None or not self._applies(method):
            return handler
        rpc_type = _rpc_type(handler)
        return _wrap_handler(handler, lambda context: self._typed_scope(method, rpc_type, context))

    def _applies(self, method: str) -> bool:
        return True

    def _typed_scope(
        self, method: str, rpc_type: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AbstractAsyncContextManager[None]:
        # Only the metrics need the RPC shape; the other scopes ignore it.
        return self._scope(method, context)

    @abc.abstractmethod
    def _scope(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AbstractAsyncContextManager[None]:
        """The context each handled call runs inside (subclasses define it)."""


def _rpc_type(handler: grpc.RpcMethodHandler) -> str:
    """The ``grpc_type`` label: unary, client_stream, server_stream or bidi_stream."""
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


def _wrap_handler(handler: grpc.RpcMethodHandler, scope: _Scope) -> grpc.RpcMethodHandler:
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.response_streaming:
        inner = handler.stream_stream if handler.request_streaming else handler.unary_stream

        async def streaming(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            async with scope(context):
                result = inner(request, context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        yield response
                elif inspect.isawaitable(result):
                    # A coroutine handler that sends with context.write() and returns None.
                    await result
                else:
                    for response in result:
                        yield response

        factory = (
            grpc.stream_stream_rpc_method_handler
            if handler.request_streaming
            else grpc.unary_stream_rpc_method_handler
        )
        return factory(streaming, **serializers)

    inner = handler.stream_unary if handler.request_streaming else handler.unary_unary

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        async with scope(context):
            result = inner(request, context)
            if inspect.isawaitable(result):
                result = await result
            return result

    factory = (
        grpc.stream_unary_rpc_method_handler
        if handler.request_streaming
        else grpc.unary_unary_rpc_method_handler
    )
    return factory(unary, **serializers)


def _metadata_value(metadata: Iterable[tuple[str, str | bytes]] | None, key: str) -> str | None:
    for name, value in metadata or ():
        if name == key:
            return value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return None


class RequestIdInterceptor(_ScopeInterceptor):
    """Bind a request id to every RPC and echo it in the initial metadata.

    Takes ``x-request-id`` from the caller when it is a sane token (1-128 chars of
    ``[A-Za-z0-9._:/+=-]``), else generates a UUID4 hex. Read it with
    ``current_request_id()``. Servicers must not send their own initial metadata.
    """

    @asynccontextmanager
    async def _scope(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[None]:
        incoming = _metadata_value(context.invocation_metadata(), REQUEST_ID_HEADER)
        request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        _set_request_id(request_id)
        await context.send_initial_metadata(((REQUEST_ID_HEADER, request_id),))
        yield


class ObservabilityInterceptor(_ScopeInterceptor):
    """Count and time every RPC and write one JSON access-log line per RPC.

    Metrics (grpc-ecosystem names): ``grpc_server_started_total``,
    ``grpc_server_handled_total{grpc_code}`` and ``grpc_server_handling_seconds``, all by
    ``grpc_type``, ``grpc_service`` and ``grpc_method``. Access log (logger
    ``orchestrator_grpckit.access``): method, code, duration_ms, request_id, tenant,
    subject; never tokens or payloads. Health and reflection calls log at DEBUG so probes
    do not drown the log.
    """

    def _scope(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AbstractAsyncContextManager[None]:
        return self._typed_scope(method, "unary", context)

    @asynccontextmanager
    async def _typed_scope(
        self, method: str, rpc_type: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[None]:
        started = time.perf_counter()
        service, name = split_method(method)
        STARTED_TOTAL.labels(rpc_type, service, name).inc()

        def finish(code: grpc.StatusCode) -> None:
            elapsed_s = time.perf_counter() - started
            HANDLED_TOTAL.labels(rpc_type, service, name, code.name).inc()
            HANDLING_SECONDS.labels(rpc_type, service, name).observe(elapsed_s)
            principal = _current_principal_or_none()
            level = logging.DEBUG if method.startswith(PUBLIC_METHOD_PREFIXES) else logging.INFO
            _access_log.log(
                level,
                "rpc %s %s",
                method,
                code.name,
                extra={
                    "method": method,
                    "code": code.name,
                    "duration_ms": round(elapsed_s * 1000, 3),
                    "request_id": current_request_id(),
                    "tenant": principal.tenant if principal else None,
                    "subject": principal.subject if principal else None,
                },
            )

        with finishing_with_code(context, finish):
            yield


@contextmanager
def finishing_with_code(
    context: grpc.aio.ServicerContext[Any, Any], finish: Callable[[grpc.StatusCode], None]
) -> Iterator[None]:
    """Around a handler: calls ``finish`` with the status code its client sees, however it
    ends: OK, the code it set or aborted with, CANCELLED (the client went away or the server
    is stopping mid-call), or UNKNOWN (an exception no interceptor mapped)."""
    code = grpc.StatusCode.UNKNOWN
    try:
        yield
        code = _context_code(context) or grpc.StatusCode.OK
    except grpc.aio.AbortError:
        code = _context_code(context) or grpc.StatusCode.UNKNOWN
        raise
    except (asyncio.CancelledError, GeneratorExit):
        code = grpc.StatusCode.CANCELLED
        raise
    finally:
        finish(code)


def _context_code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode | None:
    # grpc.aio returns the code set by abort()/set_code() as a StatusCode or, depending on
    # the version, its integer value; None when no code was set.
    code: Any = context.code()
    if code is None or isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    return None


class ErrorInterceptor(_ScopeInterceptor):
    """The one place that turns exceptions into gRPC statuses (STYLE rule 12).

    ``OrchestratorError`` → its status with ``google.rpc`` details (see ``to_rpc_status``);
    any other exception → INTERNAL with a generic message naming the request id, while the
    traceback is logged server-side. Aborts done by a servicer pass through untouched.
    """

    @asynccontextmanager
    async def _scope(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[None]:
        try:
            yield
        except grpc.aio.AbortError:
            raise
        except OrchestratorError as exc:
            status = to_rpc_status(exc)
            await context.abort(status.code, status.details, status.trailing_metadata)
        except Exception:
            request_id = current_request_id() or "-"
            _log.exception("unhandled exception in %s", method, extra={"method": method})
            status = internal_status(request_id)
            await context.abort(status.code, status.details, status.trailing_metadata)


class AuthInterceptor(_ScopeInterceptor):
    """Authenticate every RPC except health and reflection.

    Verifies ``authorization: Bearer <jwt>``, selects the tenant and binds the principal
    (read it with ``current_principal()``). Failures raise ``Unauthenticated`` /
    ``PermissionDenied``, which :class:`ErrorInterceptor` turns into statuses.

    Args:
        verifier: Token verifier.
        method_scopes: Optional ``{"/pkg.Service/Method": "orch:read"}``; the scope is
            required before the servicer runs. Servicers may also call
            ``current_principal().require_scope(...)`` themselves.
        public_prefixes: Method path prefixes served without a token.
        tenant_spanning: Full method names that act across every tenant the token grants
            (see :meth:`TokenVerifier.authenticate`): no ``x-stella-tenant`` needed.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        method_scopes: Mapping[str, str] | None = None,
        public_prefixes: Sequence[str] = PUBLIC_METHOD_PREFIXES,
        tenant_spanning: Collection[str] = (),
    ) -> None:
        self._verifier = verifier
        self._method_scopes = dict(method_scopes or {})
        self._public_prefixes = tuple(public_prefixes)
        self._tenant_spanning = frozenset(tenant_spanning)

    def _applies(self, method: str) -> bool:
        return not method.startswith(self._public_prefixes)

    @asynccontextmanager
    async def _scope(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[None]:
        principal = self._verifier.authenticate(
            context.invocation_metadata(), spans_tenants=method in self._tenant_spanning
        )
        _set_principal(principal)
        required = self._method_scopes.get(method)
        if required is not None:
            principal.require_scope(required)
        yield


def server_interceptors(
    verifier: TokenVerifier,
    *,
    method_scopes: Mapping[str, str] | None = None,
    tenant_spanning: Collection[str] = (),
    tracing: bool = True,
    extra: Sequence[grpc.aio.ServerInterceptor] = (),
) -> list[grpc.aio.ServerInterceptor]:
    """Build the standard interceptor chain, outermost first.

    Args:
        verifier: Token verifier for :class:`AuthInterceptor`.
        method_scopes: Scope required per full method name (see :class:`AuthInterceptor`).
        tenant_spanning: Methods acting across the token's tenants (see
            :class:`AuthInterceptor`).
        tracing: Add the server span interceptor when the ``OTEL_*`` variables turn tracing
            on (``orchestrator_grpckit._tracing``); off, it is not in the chain at all.
        extra: Interceptors run innermost, after authentication; their exceptions are mapped
            by :class:`ErrorInterceptor` too.

    Returns:
        The interceptors to pass to ``grpc.aio.server``.
    """
    chain: list[grpc.aio.ServerInterceptor] = []
    tracer = _tracing_interceptor() if tracing else None
    if tracer is not None:
        chain.append(tracer)
    chain += [
        RequestIdInterceptor(),
        ObservabilityInterceptor(),
        ErrorInterceptor(),
        AuthInterceptor(verifier, method_scopes, tenant_spanning=tenant_spanning),
    ]
    chain += list(extra)
    return chain


def _tracing_interceptor() -> grpc.aio.ServerInterceptor | None:
    # Imported here: _tracing builds on this module's scope machinery.
    from orchestrator_grpckit._tracing import tracing_interceptor

    return tracing_interceptor()
