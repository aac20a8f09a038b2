"""Runs the services' grpc.aio servicers under ``grpc_testing``: no network, no database.

``grpc_testing`` drives synchronous handlers only, and our servicers are coroutines, so
:func:`serve` wraps each one: the coroutine runs on a private event loop thread with the
caller's :class:`Principal` bound (what the auth interceptor does), and a domain error becomes
its gRPC status with ``google.rpc`` details through ``to_rpc_status`` and any other exception
INTERNAL — what the error interceptor does. Storage is an :class:`Untouched`: any call on it
is recorded and fails, so a refused request provably reached no store.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import grpc_testing
from google.protobuf import descriptor as pb_descriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from orchestrator_core import OrchestratorError
from orchestrator_grpckit import Principal, to_rpc_status
from orchestrator_grpckit._auth import _set_principal
from orchestrator_grpckit._status import internal_status

ALL_SCOPES = frozenset({"orch:read", "orch:operate", "orch:admin", "orch:work"})
PRINCIPAL = Principal(subject="servicer-test", tenant="acme", tenants=("acme",), scopes=ALL_SCOPES)


class Untouched:
    """Any store, ledger or client a servicer takes. While the servicer is built, calls just
    return another stand-in (constructors wrap their ledgers); once :meth:`arm` is called,
    every call is recorded in ``touched`` and raises, so an invalid request must be refused
    before any storage is reached."""

    def __init__(self, name: str = "store", state: dict[str, Any] | None = None) -> None:
        self._name = name
        self._state: dict[str, Any] = (
            state if state is not None else {"armed": False, "touched": []}
        )

    @property
    def touched(self) -> list[str]:
        return list(self._state["touched"])

    def arm(self, raises: BaseException | None = None) -> None:
        """From now on every call is recorded and raises ``raises`` (a domain error the
        servicer must pass on), or an AssertionError when None."""
        self._state["armed"] = True
        self._state["raise"] = raises

    def __getattr__(self, attr: str) -> Untouched:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Untouched(f"{self._name}.{attr}", self._state)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._state["armed"]:
            return Untouched(f"{self._name}()", self._state)
        self._state["touched"].append(self._name)
        if self._state["raise"] is not None:
            raise self._state["raise"]
        raise AssertionError(f"{self._name} was called")


class _Loop:
    """An event loop on a daemon thread, for the servicers' coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass(frozen=True)
class _Failed:
    status: grpc.Status


async def _unary(method: Callable[..., Any], request: Message, context: Any) -> Any:
    _set_principal(PRINCIPAL)  # this task's context only, as the auth interceptor does
    try:
        return await method(request, context)
    except OrchestratorError as exc:
        return _Failed(to_rpc_status(exc))
    except Exception:  # as the error interceptor: INTERNAL, no internals in the message
        return _Failed(internal_status("-"))


async def _collect(method: Callable[..., Any], request: Message, context: Any) -> Any:
    _set_principal(PRINCIPAL)
    try:
        return [item async for item in method(request, context)]
    except OrchestratorError as exc:
        return _Failed(to_rpc_status(exc))
    except Exception:
        return _Failed(internal_status("-"))


def _answer(result: Any, context: Any, empty: Any = None) -> Any:
    # code, details and trailers as the error interceptor's abort sends them (grpc_testing's
    # own abort() drops trailing metadata, so the status is set and the handler returns)
    if isinstance(result, _Failed):
        context.set_trailing_metadata(result.status.trailing_metadata)
        context.set_code(result.status.code)
        context.set_details(result.status.details)
        return empty
    return result


def _sync_servicer(servicer: Any, service: pb_descriptor.ServiceDescriptor, loop: _Loop) -> Any:
    handlers: dict[str, Callable[..., Any]] = {}
    for method in service.methods:
        target = getattr(servicer, method.name)
        if method.client_streaming:
            continue  # bidirectional Work streams are not driven here (see test_leases)
        if method.server_streaming:

            def stream(request: Message, context: Any, _t: Any = target) -> Iterator[Any]:
                yield from _answer(loop.run(_collect(_t, request, context)), context, [])

            handlers[method.name] = stream
        else:

            def unary(request: Message, context: Any, _t: Any = target) -> Any:
                return _answer(loop.run(_unary(_t, request, context)), context)

            handlers[method.name] = unary
    return type(f"Sync{service.name}", (), {k: staticmethod(v) for k, v in handlers.items()})()


@dataclass
class Outcome:
    """How an RPC ended: its code, message and the ``google.rpc`` details it carried."""

    code: grpc.StatusCode
    details: str
    bad_request: error_details_pb2.BadRequest | None
    error_info: error_details_pb2.ErrorInfo | None

    @property
    def fields(self) -> set[str]:
        return {v.field for v in self.bad_request.field_violations} if self.bad_request else set()


class Served:
    """A servicer behind a ``grpc_testing`` server; :meth:`call` invokes one RPC by name."""

    def __init__(self, servicer: Any, service: pb_descriptor.ServiceDescriptor) -> None:
        self.service = service
        self._loop = _Loop()
        self._server = grpc_testing.server_from_dictionary(
            {service: _sync_servicer(servicer, service, self._loop)},
            grpc_testing.strict_real_time(),
        )

    def call(self, name: str, request: Message) -> Outcome:
        method = self.service.methods_by_name[name]
        if method.server_streaming:
            rpc = self._server.invoke_unary_stream(method, (), request, None)
            trailing, code, details = rpc.termination()
        else:
            rpc = self._server.invoke_unary_unary(method, (), request, None)
            _, trailing, code, details = rpc.termination()
        bad_request = error_info = None
        for key, value in trailing or ():
            if key != "grpc-status-details-bin":
                continue
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    error_info = error_details_pb2.ErrorInfo()
                    detail.Unpack(error_info)
        return Outcome(code, details, bad_request, error_info)

    def close(self) -> None:
        self._loop.close()
