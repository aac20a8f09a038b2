"""What the ASGI middlewares of the REST API share: who the caller is, and problem answers.

Both middlewares (``_ratelimit``: per-caller limits in Redis; ``_idempotency``:
``Idempotency-Key`` records in PostgreSQL) key on the caller, read from a bearer token that
verifies (tenant + token subject). Requests without one fall back to the client address for
the rate limit and are refused later by the routes (401).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from orchestrator_core import OrchestratorError
from orchestrator_gateway._problems import PROBLEM_MEDIA_TYPE, problem_body
from orchestrator_grpckit import TENANT_HEADER, TokenVerifier

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/"


@dataclass(frozen=True)
class CallerId:
    """The caller a limit or an idempotency record belongs to.

    Attributes:
        tenant: The token's tenant, or ``""`` for a caller without a valid token.
        subject: The token's subject, or ``ip:<client address>`` without a valid token.
    """

    tenant: str
    subject: str

    @property
    def authenticated(self) -> bool:
        return bool(self.tenant)


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of request header ``name`` (lower-case bytes), or ``None``."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def identify(verifier: TokenVerifier, scope: Scope) -> CallerId:
    """The tenant and subject of a verifiable bearer token, else the client address."""
    auth = header(scope, b"authorization") or ""
    scheme, _, token = auth.strip().partition(" ")
    if scheme.lower() == "bearer" and token:
        tenant = header(scope, TENANT_HEADER.encode())
        try:
            principal = verifier.verify(token.strip(), tenant.strip() if tenant else None)
            return CallerId(principal.tenant, principal.subject)
        except OrchestratorError:
            pass
    client = scope.get("client") or ("unknown", 0)
    return CallerId("", f"ip:{client[0]}")


async def send_problem(send: Send, status: int, detail: str, path: str, **extra: Any) -> None:
    """Answers an RFC 9457 problem from inside a middleware (before any route ran)."""
    headers = extra.pop("headers", {})
    body = json.dumps(problem_body(status, detail, path, **extra)).encode()
    raw_headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
