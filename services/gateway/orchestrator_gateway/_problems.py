"""RFC 9457 problem details: every error of the gateway is ``application/problem+json``.

gRPC statuses map to HTTP statuses in one table (:data:`GRPC_TO_HTTP`); the ``google.rpc``
details of the status travel along as extension members: ``reason``/``domain``/``metadata``
(ErrorInfo), ``errors`` (BadRequest field violations), ``violations`` (PreconditionFailure),
``resource`` (ResourceInfo) and ``retry_after_s`` (RetryInfo, also sent as ``Retry-After``).
"""

from __future__ import annotations

import math
from typing import Any

import grpc
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from orchestrator_core import OrchestratorError
from orchestrator_grpckit import error_details

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://stella-ops.org/problems/orchestrator/"

GRPC_TO_HTTP: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 503,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.DATA_LOSS: 500,
}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class FieldError(BaseModel):
    """One invalid request field."""

    field: str
    description: str


class Violation(BaseModel):
    """One failed precondition."""

    type: str
    subject: str
    description: str


class Problem(BaseModel):
    """RFC 9457 problem details, with orchestrator extension members."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI identifying the problem type")
    title: str = Field(description="Short summary of the problem type")
    status: int = Field(description="HTTP status code")
    detail: str = Field(default="", description="Explanation of this occurrence")
    instance: str = Field(default="", description="Request path of this occurrence")
    reason: str | None = Field(default=None, description="Machine-readable reason (ErrorInfo)")
    errors: list[FieldError] | None = Field(default=None, description="Invalid request fields")
    violations: list[Violation] | None = Field(default=None, description="Failed preconditions")
    retry_after_s: float | None = Field(default=None, description="When to retry (RetryInfo)")
    request_id: str | None = Field(default=None, description="Correlates with server logs")


class ProblemError(Exception):
    """Raised by gateway code to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.headers = headers or {}
        self.extensions = extensions


def problem_body(
    status: int, detail: str, instance: str, slug: str | None = None, **extensions: Any
) -> dict[str, Any]:
    title = _TITLES.get(status, "Error")
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update({k: v for k, v in extensions.items() if v is not None})
    return body


def problem_response(
    status: int,
    detail: str,
    instance: str,
    *,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, instance, slug, **extensions),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def grpc_problem(error: grpc.aio.AioRpcError, instance: str) -> JSONResponse:
    """The problem response for a failed gRPC call, details carried over."""
    code = error.code()
    status = GRPC_TO_HTTP.get(code, 502)
    details = error_details(error)
    extensions: dict[str, Any] = {"grpc_status": code.name}
    headers: dict[str, str] = {}
    slug = code.name.lower().replace("_", "-")
    info = details.get("ErrorInfo")
    if info is not None:
        extensions["reason"] = info.reason
        extensions["domain"] = info.domain
        if info.metadata:
            extensions["metadata"] = dict(info.metadata)
    bad = details.get("BadRequest")
    if bad is not None:
        extensions["errors"] = [
            {"field": v.field, "description": v.description} for v in bad.field_violations
        ]
    pre = details.get("PreconditionFailure")
    if pre is not None:
        extensions["violations"] = [
            {"type": v.type, "subject": v.subject, "description": v.description}
            for v in pre.violations
        ]
    resource = details.get("ResourceInfo")
    if resource is not None:
        extensions["resource"] = {
            "type": resource.resource_type,
            "name": resource.resource_name,
        }
    retry = details.get("RetryInfo")
    if retry is not None:
        seconds = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
        extensions["retry_after_s"] = seconds
        headers["Retry-After"] = str(max(1, math.ceil(seconds)))
    elif status == 429:
        headers["Retry-After"] = "1"
    detail = error.details() or code.name
    if code == grpc.StatusCode.UNAVAILABLE:
        detail = f"upstream service unavailable: {detail}"
    return problem_response(status, detail, instance, slug=slug, headers=headers, **extensions)


def storage_problem(error: OrchestratorError, instance: str) -> JSONResponse:
    """The problem response for an error of the gateway's own reads (the Console's charts and
    searches, ``_routes.insights``): the status its gRPC code would have."""
    status = GRPC_TO_HTTP.get(grpc.StatusCode[error.grpc_status], 500)
    slug = error.grpc_status.lower().replace("_", "-")
    return problem_response(status, str(error), instance, slug=slug)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": _TITLES[status],
        "model": Problem,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for status in (400, 401, 403, 404, 409, 429, 503)
}
