"""Exceptions shared by the worker SDK and the producer client (STYLE rule 13).

:class:`StellaError` is the one root. A failed gRPC call becomes an :class:`RPCError` whose
class follows the status code (:class:`NotFoundError`, :class:`AlreadyExistsError`,
:class:`InvalidArgumentError`, :class:`FailedPreconditionError`, :class:`PermissionDeniedError`,
:class:`UnauthenticatedError`, :class:`ResourceExhaustedError`, :class:`UnavailableError`), so
callers catch what they can handle and still read ``code``, ``reason`` and ``details``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "AlreadyExistsError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "RPCError",
    "ResourceExhaustedError",
    "StellaError",
    "UnauthenticatedError",
    "UnavailableError",
    "parse_status_details",
]

STATUS_DETAILS_KEY: Final = "grpc-status-details-bin"


class StellaError(Exception):
    """Root of every exception the SDK (worker and producer) raises or defines."""


class RPCError(StellaError):
    """A gRPC call failed with a status the SDK does not retry (or retries ran out).

    :meth:`from_grpc` returns the subclass of the status code when there is one.

    Attributes:
        code: The gRPC status code.
        message: The status message the server sent.
        reason: ``google.rpc.ErrorInfo.reason`` from the ``grpc-status-details-bin``
            trailer (e.g. ``"UNAUTHENTICATED"``, ``"lease_lost"``), or ``""``.
        details: Every ``google.rpc`` detail message in the trailer, keyed by message name
            (``"ErrorInfo"``, ``"BadRequest"``, ``"RetryInfo"``, ...).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}" + (f" ({reason})" if reason else ""))
        self.code = code
        self.message = message
        self.reason = reason
        self.details: Mapping[str, Any] = dict(details or {})

    @classmethod
    def from_grpc(cls, error: grpc.RpcError) -> RPCError:
        """Build the typed error of a failed call (``grpc.aio.AioRpcError`` or ``grpc.Call``).

        Args:
            error: The error raised by a stub or a stream.

        Returns:
            An instance of the code's subclass (:class:`NotFoundError`...) when ``cls`` is
            :class:`RPCError` itself, else of ``cls``; ``reason`` and ``details`` are empty
            when the trailer has none.
        """
        code_fn = getattr(error, "code", None)
        code = code_fn() if callable(code_fn) else grpc.StatusCode.UNKNOWN
        if not isinstance(code, grpc.StatusCode):
            code = grpc.StatusCode.UNKNOWN
        details_fn = getattr(error, "details", None)
        message = (details_fn() if callable(details_fn) else "") or ""
        trailing_fn = getattr(error, "trailing_metadata", None)
        parsed = parse_status_details(trailing_fn() if callable(trailing_fn) else None)
        info = parsed.get("ErrorInfo")
        target = _BY_CODE.get(code, cls) if cls is RPCError else cls
        return target(code, message, reason=getattr(info, "reason", ""), details=parsed)


class NotFoundError(RPCError):
    """``NOT_FOUND``: the job, run, source... does not exist (for this tenant)."""


class AlreadyExistsError(RPCError):
    """``ALREADY_EXISTS``: a resource with that name or key exists."""


class InvalidArgumentError(RPCError):
    """``INVALID_ARGUMENT``: the request is malformed; ``details["BadRequest"]`` says where."""


class FailedPreconditionError(RPCError):
    """``FAILED_PRECONDITION``: the resource's state forbids it (e.g. replaying a live job)."""


class PermissionDeniedError(RPCError):
    """``PERMISSION_DENIED``: the token lacks the scope or the tenant."""


class UnauthenticatedError(RPCError):
    """``UNAUTHENTICATED``: no token, or one the server does not accept."""


class ResourceExhaustedError(RPCError):
    """``RESOURCE_EXHAUSTED``: a quota (``max_queued``...) or a rate limit refused it."""


class UnavailableError(RPCError):
    """``UNAVAILABLE``: the service could not be reached (after the client's retries)."""


_BY_CODE: Final[Mapping[grpc.StatusCode, type[RPCError]]] = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
}

_DETAIL_TYPES: Final[tuple[Any, ...]] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
    error_details_pb2.RequestInfo,
)


def parse_status_details(metadata: Any) -> dict[str, Any]:
    """Unpack the ``google.rpc.Status`` details of a trailer (empty when absent/garbled)."""
    raw = None
    for key, value in metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            raw = value
    if raw is None:
        return {}
    try:
        status = status_pb2.Status.FromString(raw)
    except DecodeError:
        return {}
    parsed: dict[str, Any] = {}
    for holder in status.details:
        for detail_type in _DETAIL_TYPES:
            if holder.Is(detail_type.DESCRIPTOR):
                detail = detail_type()
                holder.Unpack(detail)
                parsed[detail_type.DESCRIPTOR.name] = detail
                break
        else:
            parsed[holder.TypeName()] = holder
    return parsed
