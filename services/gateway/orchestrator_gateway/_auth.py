"""Bearer-token identity of REST calls, and the operator reason of control actions.

The gateway verifies the token itself (same verifier and rules as the gRPC services:
:class:`orchestrator_grpckit.TokenVerifier`) to answer 401/403 early and to key rate limits
and idempotency by tenant, and then forwards the caller's token to the services, which check
it again. The tenant is the token's; ``X-Stella-Tenant`` only chooses among the tenants of a
multi-tenant token.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, WebSocket
from opentelemetry import propagate

from orchestrator_core import OrchestratorError
from orchestrator_gateway._problems import ProblemError
from orchestrator_grpckit import TENANT_HEADER, Principal, TokenVerifier

READ = "orch:read"
OPERATE = "orch:operate"
QUOTA = "orch:quota"
BACKFILL = "orch:backfill"
MAX_REASON_CHARS = 256
MAX_TICKET_CHARS = 128
REASON_HEADERS = ("x-stella-operator-reason", "x-stella-reason")
TICKET_HEADERS = ("x-stella-operator-ticket", "x-stella-ticket")


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one REST request."""

    principal: Principal
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata forwarding the caller's identity and the current trace context
        (W3C ``traceparent``/``tracestate`` of the request's span; none when tracing is off)."""
        trace_headers: dict[str, str] = {}
        propagate.inject(trace_headers)
        return (
            ("authorization", f"Bearer {self.token}"),
            (TENANT_HEADER, self.principal.tenant),
            *trace_headers.items(),
        )


def _status_of(error: OrchestratorError) -> int:
    return {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "INVALID_ARGUMENT": 400}.get(
        error.grpc_status, 401
    )


def authenticate(verifier: TokenVerifier, request: Request) -> Caller:
    """The caller of ``request``.

    Raises:
        ProblemError: 401 without a valid bearer token, 403 for a tenant the token lacks.
    """
    header = request.headers.get("authorization")
    if not header:
        raise ProblemError(
            401,
            "missing 'Authorization: Bearer <token>' header",
            slug="token-missing",
            headers={"WWW-Authenticate": 'Bearer realm="stella-orchestrator"'},
            reason="TOKEN_MISSING",
        )
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(
            401,
            "the Authorization header must be 'Bearer <token>'",
            slug="token-malformed",
            headers={"WWW-Authenticate": 'Bearer realm="stella-orchestrator"'},
            reason="TOKEN_MALFORMED",
        )
    requested = request.headers.get(TENANT_HEADER)
    try:
        principal = verifier.verify(token.strip(), requested.strip() if requested else None)
    except OrchestratorError as exc:
        status = _status_of(exc)
        headers = (
            {"WWW-Authenticate": 'Bearer realm="stella-orchestrator", error="invalid_token"'}
            if status == 401
            else None
        )
        raise ProblemError(
            status, str(exc), headers=headers, reason=getattr(exc, "reason", None)
        ) from None
    return Caller(principal=principal, token=token.strip())


def authenticate_websocket(
    verifier: TokenVerifier, websocket: WebSocket
) -> tuple[Caller, str | None]:
    """The caller of a WebSocket and the subprotocol to accept: the token comes from the
    ``Authorization`` header, or the subprotocol pair ``["bearer", "<token>"]`` (browsers
    cannot set headers on WebSockets).

    Raises:
        ProblemError: 401 without a valid bearer token.
    """
    header = websocket.headers.get("authorization")
    subprotocol = None
    token = None
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
    else:
        offered = [
            p.strip()
            for p in websocket.headers.get("sec-websocket-protocol", "").split(",")
            if p.strip()
        ]
        if len(offered) == 2 and offered[0] == "bearer":
            token, subprotocol = offered[1], "bearer"
    if not token:
        raise ProblemError(401, "missing bearer token")
    requested = websocket.headers.get("x-stella-tenant")
    try:
        principal = verifier.verify(token, requested)
    except OrchestratorError as exc:
        raise ProblemError(401, str(exc)) from None
    return Caller(principal=principal, token=token), subprotocol


def require_scope(caller: Caller, scope: str) -> None:
    """Refuse with 403 unless the token grants ``scope``."""
    if not caller.principal.has_scope(scope):
        granted = ", ".join(sorted(caller.principal.scopes)) or "none"
        raise ProblemError(
            403,
            f"this action needs scope {scope!r}; the token grants {granted}",
            slug="scope-missing",
            reason="SCOPE_MISSING",
            required_scope=scope,
        )


@dataclass(frozen=True)
class OperatorReason:
    """Reason and ticket of a control action (recorded in the audit trail)."""

    reason: str
    ticket: str


def operator_reason(request: Request, *, required: bool = True) -> OperatorReason:
    """Read ``X-Stella-Operator-Reason`` / ``-Ticket`` (or ``X-Stella-Reason`` / ``-Ticket``).

    Raises:
        ProblemError: 400 when the reason is required and missing, or either is too long.
    """
    reason = next((request.headers[h] for h in REASON_HEADERS if h in request.headers), "")
    ticket = next((request.headers[h] for h in TICKET_HEADERS if h in request.headers), "")
    reason, ticket = reason.strip(), ticket.strip()
    errors = []
    if required and not reason:
        errors.append(
            {
                "field": "X-Stella-Operator-Reason",
                "description": "required for control actions: say why (it is audited)",
            }
        )
    if len(reason) > MAX_REASON_CHARS:
        errors.append(
            {"field": "X-Stella-Operator-Reason", "description": f"at most {MAX_REASON_CHARS}"}
        )
    if len(ticket) > MAX_TICKET_CHARS:
        errors.append(
            {"field": "X-Stella-Operator-Ticket", "description": f"at most {MAX_TICKET_CHARS}"}
        )
    if errors:
        raise ProblemError(
            400,
            "; ".join(f"{e['field']}: {e['description']}" for e in errors),
            slug="operator-reason-required",
            reason="OPERATOR_REASON_REQUIRED",
            errors=errors,
        )
    return OperatorReason(reason=reason, ticket=ticket)
