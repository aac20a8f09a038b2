"""OrchestratorError <-> ``google.rpc.Status`` (server side) and its parsing (client side).

The only place that knows how a domain error becomes a gRPC status (STYLE rule 12).
"""

from __future__ import annotations

import math
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from orchestrator_core.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OrchestratorError,
    ResourceExhausted,
)

ERROR_DOMAIN = "orchestrator.stella-ops.org"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
INTERNAL_MESSAGE = "internal error; the server logged the details under request id {request_id}"

_DETAIL_TYPES: tuple[type[Any], ...] = (
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


def status_code_of(error: OrchestratorError) -> grpc.StatusCode:
    """Return the gRPC status code an error maps to.

    Args:
        error: A domain error.

    Returns:
        ``grpc.StatusCode[error.grpc_status]``; ``UNKNOWN`` if the name is not a status.
    """
    code = getattr(grpc.StatusCode, error.grpc_status, None)
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def to_rpc_status(error: OrchestratorError) -> grpc.Status:
    """Build the status (code, message, ``grpc-status-details-bin``) for a domain error.

    Details: ``ErrorInfo`` always; ``BadRequest``, ``PreconditionFailure``,
    ``ResourceInfo`` and ``RetryInfo`` where the error carries them.

    Args:
        error: A domain error.

    Returns:
        A ``grpc.Status`` for ``context.abort_with_status``/``abort``.
    """
    code = status_code_of(error)
    details: list[Any] = [
        error_details_pb2.ErrorInfo(
            reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
        )
    ]
    if isinstance(error, InvalidArgument) and error.violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
    if isinstance(error, FailedPrecondition) and error.violations:
        details.append(
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=v.type, subject=v.subject, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
    if isinstance(error, NotFound):
        details.append(
            error_details_pb2.ResourceInfo(
                resource_type=error.resource_type,
                resource_name=error.resource_name,
                description=error.message,
            )
        )
    if isinstance(error, ResourceExhausted) and error.retry_after_s is not None:
        details.append(error_details_pb2.RetryInfo(retry_delay=_duration(error.retry_after_s)))
    return _status(code, error.message, details)


def internal_status(request_id: str) -> grpc.Status:
    """Build the generic INTERNAL status sent for an unexpected exception.

    It names the request id (so support can find the logged traceback) and nothing else.

    Args:
        request_id: Id of the failed request.

    Returns:
        The status.
    """
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=ERROR_DOMAIN, metadata={"request_id": request_id}
    )
    return _status(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE.format(request_id=request_id), [info])


def _status(code: grpc.StatusCode, message: str, details: list[Any]) -> grpc.Status:
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=message, details=packed)
    )
    return status


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = math.floor(seconds)
    return duration_pb2.Duration(
        seconds=whole, nanos=round((seconds - whole) * 1e9) % 1_000_000_000
    )


def error_details(rpc_error: grpc.RpcError) -> dict[str, Any]:
    """Parse the ``google.rpc.Status`` details of a failed call.

    Works with ``grpc.aio.AioRpcError`` and the sync ``grpc.RpcError``/``grpc.Call``.

    Args:
        rpc_error: The error raised by a stub call.

    Returns:
        The detail messages keyed by message name: ``"ErrorInfo"``
        (``error_details_pb2.ErrorInfo``), ``"BadRequest"``, ``"PreconditionFailure"``,
        ``"ResourceInfo"``, ``"RetryInfo"`` (and the other standard ``google.rpc`` details);
        an unknown detail type is kept as its packed ``Any`` under its full type name.
        Empty when the status has no details.
    """
    trailing = getattr(rpc_error, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    raw: bytes | None = None
    for key, value in metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            raw = value
    if raw is None:
        return {}
    status = status_pb2.Status.FromString(raw)
    parsed: dict[str, Any] = {}
    for holder in status.details:
        for detail_type in _DETAIL_TYPES:
            if holder.Is(detail_type.DESCRIPTOR):
                message = detail_type()
                holder.Unpack(message)
                parsed[detail_type.DESCRIPTOR.name] = message
                break
        else:
            parsed[holder.TypeName()] = holder
    return parsed
