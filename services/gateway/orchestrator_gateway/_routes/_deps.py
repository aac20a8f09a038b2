"""What every route depends on: the caller and its scope, the gRPC clients, the operator's
reason, the paging and filter parameters, and the header documentation of control actions.

One module for all of them, so a route module imports its dependencies from here and never
from another route module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from orchestrator_gateway import _auth as auth
from orchestrator_gateway._auth import Caller, OperatorReason
from orchestrator_gateway._clients import Clients
from orchestrator_gateway._problems import PROBLEM_RESPONSES
from orchestrator_grpckit import enum_labels
from orchestrator_pg import JobStore, OverviewStore, QuotaStore, TenantStore
from stella.orchestrator.v1 import common_pb2

API_PREFIX = "/api/v1/orchestrator"


def new_router() -> APIRouter:
    """The router of one route module: under :data:`API_PREFIX`, errors as problem+json."""
    return APIRouter(prefix=API_PREFIX, responses=PROBLEM_RESPONSES)


@dataclass(frozen=True)
class Reads:
    """The gateway's own tenant-isolated reads (``insights``, ``tenants``): what the Console
    charts and searches that no service RPC answers."""

    jobs: JobStore
    overview: OverviewStore
    quotas: QuotaStore
    tenants: TenantStore


def clients(request: Request) -> Clients:
    return request.app.state.clients


def reads(request: Request) -> Reads:
    return request.app.state.reads


def caller(request: Request) -> Caller:
    """The authenticated caller (401/403 problem otherwise)."""
    return auth.authenticate(request.app.state.verifier, request)


def _needs(scope: str) -> Callable[[Caller], Caller]:
    """The dependency on a caller that holds ``scope`` (403 problem otherwise)."""

    def holder(who: Annotated[Caller, Depends(caller)]) -> Caller:
        auth.require_scope(who, scope)
        return who

    return holder


def reason(request: Request) -> OperatorReason:
    return auth.operator_reason(request)


def optional_reason(request: Request) -> OperatorReason:
    return auth.operator_reason(request, required=False)


Anyone = Annotated[Caller, Depends(caller)]
Reader = Annotated[Caller, Depends(_needs(auth.READ))]
Operator = Annotated[Caller, Depends(_needs(auth.OPERATE))]
QuotaAdmin = Annotated[Caller, Depends(_needs(auth.QUOTA))]
Backfiller = Annotated[Caller, Depends(_needs(auth.BACKFILL))]
Grpc = Annotated[Clients, Depends(clients)]
Stores = Annotated[Reads, Depends(reads)]
Reason = Annotated[OperatorReason, Depends(reason)]
OptionalReason = Annotated[OperatorReason, Depends(optional_reason)]
PageSize = Annotated[int, Query(ge=1, le=500, description="Items per page")]
PageToken = Annotated[str, Query(max_length=4096, description="next_page_token of the last page")]
Text64 = Annotated[str, Query(max_length=64)]
Text200 = Annotated[str, Query(max_length=200)]
EventTypes = Annotated[list[str], Query(max_length=32)]
Tags = list[str | Enum]  # OpenAPI tags of a route


def operator_ctx(why: OperatorReason) -> common_pb2.OperatorContext:
    return common_pb2.OperatorContext(reason=why.reason, ticket=why.ticket)


def labels(enum: Any) -> Any:
    """The query type of an enum filter: its labels but ``unspecified``."""
    return Literal[tuple(label for label in enum_labels(enum) if label != "unspecified")]


# The operator headers of control actions (read by operator_reason(), not by FastAPI).
REASON_DOC: dict[str, Any] = {
    "parameters": [
        {
            "name": "X-Stella-Operator-Reason",
            "in": "header",
            "required": True,
            "description": "Why the action is taken (at most 256 characters; audited). "
            "X-Stella-Reason is accepted too.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 256},
        },
        {
            "name": "X-Stella-Operator-Ticket",
            "in": "header",
            "required": False,
            "description": "Change or incident ticket (at most 128 characters).",
            "schema": {"type": "string", "maxLength": 128},
        },
    ]
}
# Every POST accepts Idempotency-Key (read by the idempotency middleware).
IDEMPOTENCY_DOC: dict[str, Any] = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "Repeating a POST with the same key and body returns the first "
            "answer (Idempotent-Replayed: true) for 24 h; another body is 422.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }
    ]
}
CONTROL_DOC: dict[str, Any] = {
    "parameters": IDEMPOTENCY_DOC["parameters"] + REASON_DOC["parameters"]
}


def header_doc(method: str, reason_required: bool) -> dict[str, Any] | None:
    """The headers a route documents: Idempotency-Key on a POST, the reason where required."""
    if method == "POST":
        return CONTROL_DOC if reason_required else IDEMPOTENCY_DOC
    return REASON_DOC if reason_required else None
