"""A ``grpc_testing`` server around a grpc.aio servicer, behind the services' own interceptors.

``grpc_testing`` only drives synchronous handlers, and every servicer here is grpc.aio
(coroutines and async generators), so each method gets a synchronous adapter:

* The servicer method is wrapped by the real :class:`ErrorInterceptor` and
  :class:`AuthInterceptor` of ``orchestrator_grpckit`` (built through their
  ``intercept_service``, as ``grpc.aio.server`` does), with the service's real
  ``METHOD_SCOPES`` and a real :class:`TokenVerifier`: the caller sends a minted bearer token
  in the invocation metadata. So the status, message and ``grpc-status-details-bin`` a test
  sees are the ones the running service sends; nothing is re-implemented here.
* The whole RPC runs as one task on a private event loop thread (one task, so the principal
  the auth interceptor binds in a ``ContextVar`` holds for the whole call, streams
  included); responses cross to the ``grpc_testing`` thread through a queue as they come.
* The servicer sees :class:`AioContext`, the part of ``grpc.aio.ServicerContext`` the
  interceptors and servicers use, over the ``grpc_testing`` context: ``abort`` is a
  coroutine taking trailing metadata (``grpc_testing``'s own ``abort`` is synchronous and
  drops trailers), sets code, message and trailers, and raises ``grpc.aio.AbortError``.
* A client stream is handed to the servicer as an async iterator that pulls each request
  from ``grpc_testing``'s blocking request iterator on a worker thread.

No network, no database: storage is whatever fake the test builds the servicer with
(see ``Untouched`` in ``_untouched.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import grpc_testing
from google.protobuf import descriptor as pb_descriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from orchestrator_grpckit import (
    AuthInterceptor,
    ErrorInterceptor,
    TokenVerifier,
    error_details,
    mint_dev_token,
)

SECRET = "servicer-unit-tests-hs256-secret-0123456789abcdef"
TENANT = "acme"
EVERY_SCOPE = (
    "orch:read",
    "orch:operate",
    "orch:admin",
    "orch:work",
    "orch:quota",
    "orch:backfill",
)
# A generous bound for one RPC of a fake-backed servicer: a guard against a hung harness,
# never a timing assumption (every call here finishes in milliseconds or fails outright).
RPC_GUARD_S = 60.0

_END = object()


def token(
    scopes: Iterable[str] = EVERY_SCOPE,
    *,
    tenants: Sequence[str] = (TENANT,),
    job_types: Sequence[str] = (),
    subject: str = "servicer-test",
) -> str:
    """A valid HS256 bearer token for the harness's verifier."""
    return mint_dev_token(SECRET, subject, list(tenants), list(scopes), list(job_types))


def bearer(value: str | None = None) -> tuple[tuple[str, str], ...]:
    """Invocation metadata carrying ``value`` (default: a token with every scope)."""
    return (("authorization", f"Bearer {value if value is not None else token()}"),)


class AioContext:
    """The ``grpc.aio.ServicerContext`` surface used by our interceptors and servicers,
    over a ``grpc_testing`` servicer context."""

    def __init__(self, inner: grpc.ServicerContext) -> None:
        self._inner = inner
        self._code: grpc.StatusCode | None = None
        self._details: str | None = None

    def invocation_metadata(self) -> Any:
        return self._inner.invocation_metadata()

    async def send_initial_metadata(self, metadata: Any) -> None:
        self._inner.send_initial_metadata(metadata)

    def set_trailing_metadata(self, metadata: Any) -> None:
        self._inner.set_trailing_metadata(metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code
        self._inner.set_code(code)

    def set_details(self, details: str) -> None:
        self._details = details
        self._inner.set_details(details)

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str | None:
        return self._details

    def time_remaining(self) -> float | None:
        remaining: float | None = self._inner.time_remaining()
        return remaining

    def cancelled(self) -> bool:
        return not self._inner.is_active()

    def done(self) -> bool:
        return not self._inner.is_active()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:0"

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> None:
        if trailing_metadata:
            self.set_trailing_metadata(trailing_metadata)
        self.set_code(code)
        self.set_details(details)
        raise grpc.aio.AbortError(f"aborted with {code.name}")


@dataclass(frozen=True)
class _CallDetails:
    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


def _base_handler(behavior: Callable[..., Any], method: Any) -> grpc.RpcMethodHandler:
    if method.client_streaming and method.server_streaming:
        return grpc.stream_stream_rpc_method_handler(behavior)
    if method.client_streaming:
        return grpc.stream_unary_rpc_method_handler(behavior)
    if method.server_streaming:
        return grpc.unary_stream_rpc_method_handler(behavior)
    return grpc.unary_unary_rpc_method_handler(behavior)


def _behavior(handler: grpc.RpcMethodHandler) -> Callable[..., Any]:
    for name in ("stream_stream", "stream_unary", "unary_stream", "unary_unary"):
        behavior = getattr(handler, name)
        if behavior is not None:
            found: Callable[..., Any] = behavior
            return found
    raise AssertionError("a handler without behavior")


async def _intercept(
    chain: Sequence[grpc.aio.ServerInterceptor], handler: grpc.RpcMethodHandler, path: str
) -> grpc.RpcMethodHandler:
    """``handler`` wrapped by ``chain`` (outermost first), as ``grpc.aio.server`` does."""
    for interceptor in reversed(chain):

        async def continuation(
            details: Any, _handler: grpc.RpcMethodHandler = handler
        ) -> grpc.RpcMethodHandler:
            return _handler

        handler = await interceptor.intercept_service(continuation, _CallDetails(path))
    return handler


@dataclass
class Outcome:
    """How one RPC ended, as a client would see it."""

    code: grpc.StatusCode
    details: str
    responses: list[Any]
    trailing: tuple[tuple[str, Any], ...]
    status: status_pb2.Status | None
    parsed: dict[str, Any] = field(default_factory=dict)

    def trailing_metadata(self) -> tuple[tuple[str, Any], ...]:
        return self.trailing

    @property
    def error_info(self) -> error_details_pb2.ErrorInfo | None:
        info: error_details_pb2.ErrorInfo | None = self.parsed.get("ErrorInfo")
        return info

    @property
    def bad_request(self) -> error_details_pb2.BadRequest | None:
        bad: error_details_pb2.BadRequest | None = self.parsed.get("BadRequest")
        return bad

    @property
    def fields(self) -> set[str]:
        bad = self.bad_request
        return {v.field for v in bad.field_violations} if bad is not None else set()


class _Call:
    """What ``rpc_status.from_call`` reads from a client call."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: Any) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailing


def outcome(
    code: grpc.StatusCode, details: str | None, trailing: Any, responses: list[Any]
) -> Outcome:
    """Parse the end of an RPC the way a client does: ``rpc_status.from_call`` (which also
    checks that the details' code and message agree with the call's) and the project's own
    client-side parser :func:`orchestrator_grpckit.error_details`."""
    trailers = tuple(trailing or ())
    text = details or ""
    status = rpc_status.from_call(_Call(code, text, trailers))
    result = Outcome(code, text, responses, trailers, status)
    result.parsed = error_details(result)  # reads trailing_metadata(), as from an RpcError
    return result


class Chain:
    """A servicer behind the real error and auth interceptors on a ``grpc_testing`` server.

    Args:
        servicer: The grpc.aio servicer.
        service: Its service descriptor (``*_pb2.DESCRIPTOR.services_by_name[...]``).
        method_scopes: The service's ``METHOD_SCOPES`` (``None``: serve without any
            interceptor, as the token-less Envoy listener does).
    """

    def __init__(
        self,
        servicer: Any,
        service: pb_descriptor.ServiceDescriptor,
        method_scopes: Mapping[str, str] | None,
    ) -> None:
        self.service = service
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._pullers = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="requests")
        # a token-less listener (Envoy's) has the error interceptor only, as EnvoyListener
        chain: list[grpc.aio.ServerInterceptor] = [ErrorInterceptor()]
        if method_scopes is not None:
            verifier = TokenVerifier(SECRET, None)
            chain = [ErrorInterceptor(), AuthInterceptor(verifier, method_scopes)]
        handlers: dict[str, Callable[..., Any]] = {}
        for method in service.methods:
            base = _base_handler(getattr(servicer, method.name), method)
            path = f"/{service.full_name}/{method.name}"
            wrapped = self._run(_intercept(chain, base, path))
            handlers[method.name] = self._sync(_behavior(wrapped), method)
        facade = type(f"Sync{service.name}", (), {k: staticmethod(v) for k, v in handlers.items()})
        self._server = grpc_testing.server_from_dictionary(
            {service: facade()}, grpc_testing.strict_real_time()
        )

    # -- driving the coroutines ----------------------------------------------------------

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(RPC_GUARD_S)

    async def _requests(self, requests: Iterator[Any]) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        while True:
            item = await loop.run_in_executor(self._pullers, next, requests, _END)
            if item is _END:
                return
            yield item

    def _drive(
        self, behavior: Callable[..., Any], argument: Any, context: grpc.ServicerContext
    ) -> Iterator[Any]:
        aio_context = AioContext(context)
        out: queue.Queue[tuple[str, Any]] = queue.Queue()

        async def rpc() -> None:
            try:
                result = behavior(argument, aio_context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        out.put(("response", response))
                else:
                    out.put(("response", await result))
            except grpc.aio.AbortError:
                pass  # code, message and trailers are on the context already
            except BaseException as exc:  # the interceptors let nothing else out: a harness bug
                out.put(("error", exc))
            finally:
                out.put(("end", None))

        asyncio.run_coroutine_threadsafe(rpc(), self._loop)
        while True:
            kind, value = out.get(timeout=RPC_GUARD_S)
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value

    def _sync(self, behavior: Callable[..., Any], method: Any) -> Callable[..., Any]:
        def argument(request: Any) -> Any:
            return self._requests(request) if method.client_streaming else request

        if method.server_streaming:

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                yield from self._drive(behavior, argument(request), context)

            return stream

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            responses = list(self._drive(behavior, argument(request), context))
            return responses[0] if responses else None

        return unary

    # -- calling -------------------------------------------------------------------------

    def call(
        self,
        name: str,
        request: Message | Sequence[Message],
        metadata: Sequence[tuple[str, str]] | None = None,
    ) -> Outcome:
        """Invoke RPC ``name`` with a request (a list of requests for a client stream,
        sent then closed) and the given invocation metadata (default: a full token)."""
        method = self.service.methods_by_name[name]
        md = tuple(metadata) if metadata is not None else bearer()
        if method.client_streaming:
            requests = list(request) if isinstance(request, Sequence) else [request]
            if method.server_streaming:
                rpc = self._server.invoke_stream_stream(method, md, None)
            else:
                rpc = self._server.invoke_stream_unary(method, md, None)
            for one in requests:
                rpc.send_request(one)
            rpc.requests_closed()
            if method.server_streaming:
                trailing, code, details = rpc.termination()
                return outcome(code, details, trailing, _drain(rpc))
            response, trailing, code, details = rpc.termination()
            return outcome(code, details, trailing, [] if response is None else [response])
        assert isinstance(request, Message)
        if method.server_streaming:
            stream = self._server.invoke_unary_stream(method, md, request, None)
            trailing, code, details = stream.termination()
            return outcome(code, details, trailing, _drain(stream))
        unary = self._server.invoke_unary_unary(method, md, request, None)
        response, trailing, code, details = unary.termination()
        return outcome(code, details, trailing, [] if response is None else [response])

    def close(self) -> None:
        self._pullers.shutdown(wait=False, cancel_futures=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(RPC_GUARD_S)
        self._loop.close()


def _drain(rpc: Any) -> list[Any]:
    # After termination, take_response() hands out what is still queued and then raises
    # ValueError("No more responses!"): that is the end of the stream, not an error.
    responses: list[Any] = []
    while True:
        try:
            responses.append(rpc.take_response())
        except ValueError:
            return responses
