"""ASGI middleware of the REST API: per-caller rate limits and ``Idempotency-Key`` replay.

Both key on the caller (tenant + token subject, read from a token that verifies; requests
without one fall back to the client address and are refused later by the routes).

Rate limit: a token bucket per caller (``rate_per_s``, ``rate_burst``). Every ``/api/``
response carries ``X-RateLimit-Limit`` (burst), ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (seconds until the bucket is full again); an empty bucket answers 429
problem+json with ``Retry-After``.

Idempotency: a POST with ``Idempotency-Key`` is remembered for ``ttl_s`` under (tenant,
subject, path, key) with a hash of its body. Repeating it returns the remembered status and
body with ``Idempotent-Replayed: true``; the same key with another body is 422; the same key
while the first request is still running is 409. Answers of 5xx and 429 are not remembered,
so a retry after an outage runs again. The store is in memory, per replica: behind a load
balancer pin clients to a replica (or accept that a retry landing elsewhere runs again;
the scheduler's own idempotency keys on runs and jobs still hold then).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
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
MAX_CALLERS = 10_000
MAX_IDEMPOTENCY_ENTRIES = 10_000
MAX_IDEMPOTENCY_KEY_CHARS = 255
MAX_BODY_BYTES = 1024 * 1024


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def caller_key(verifier: TokenVerifier, scope: Scope) -> str:
    """``tenant/subject`` of a verifiable bearer token, else ``ip:<client address>``."""
    auth = _header(scope, b"authorization") or ""
    scheme, _, token = auth.strip().partition(" ")
    if scheme.lower() == "bearer" and token:
        tenant = _header(scope, TENANT_HEADER.encode())
        try:
            principal = verifier.verify(token.strip(), tenant.strip() if tenant else None)
            return f"{principal.tenant}/{principal.subject}"
        except OrchestratorError:
            pass
    client = scope.get("client") or ("unknown", 0)
    return f"ip:{client[0]}"


async def _send_problem(send: Send, status: int, detail: str, path: str, **extra: Any) -> None:
    headers = extra.pop("headers", {})
    body = json.dumps(problem_body(status, detail, path, **extra)).encode()
    raw_headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimitMiddleware:
    """Token bucket per caller on ``/api/`` (HTTP and WebSocket handshakes)."""

    def __init__(
        self, app: ASGIApp, *, verifier: TokenVerifier, rate_per_s: float, burst: int
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.rate = rate_per_s
        self.burst = burst
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _take(self, key: str) -> tuple[bool, float, float]:
        now = time.monotonic()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        self._buckets[key] = bucket
        while len(self._buckets) > MAX_CALLERS:
            self._buckets.popitem(last=False)
        wait = 0.0 if allowed else (1.0 - bucket.tokens) / self.rate
        return allowed, bucket.tokens, wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        allowed, remaining, wait = self._take(caller_key(self.verifier, scope))
        reset = math.ceil((self.burst - remaining) / self.rate)
        limit_headers = [
            (b"x-ratelimit-limit", str(self.burst).encode()),
            (b"x-ratelimit-remaining", str(math.floor(remaining)).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]
        if not allowed:
            retry = max(1, math.ceil(wait))
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1013, "reason": "rate limited"})
                return
            await _send_problem(
                send,
                429,
                f"rate limit of {self.rate:g} requests/s (burst {self.burst}) exceeded; "
                f"retry in {retry} s",
                scope["path"],
                slug="rate-limited",
                reason="RATE_LIMITED",
                retry_after_s=wait,
                headers={
                    "Retry-After": str(retry),
                    "X-RateLimit-Limit": str(self.burst),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset),
                },
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *limit_headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass
class _Remembered:
    fingerprint: str
    expires: float
    status: int = 0
    headers: list[tuple[bytes, bytes]] | None = None
    body: bytes = b""
    done: bool = False


class IdempotencyMiddleware:
    """Replays the answer of a POST repeated with the same ``Idempotency-Key``."""

    def __init__(self, app: ASGIApp, *, verifier: TokenVerifier, ttl_s: float) -> None:
        self.app = app
        self.verifier = verifier
        self.ttl_s = ttl_s
        self._store: OrderedDict[tuple[str, str, str], _Remembered] = OrderedDict()

    def _expire(self, now: float) -> None:
        for key in [k for k, v in self._store.items() if v.done and v.expires < now]:
            del self._store[key]
        while len(self._store) > MAX_IDEMPOTENCY_ENTRIES:
            self._store.popitem(last=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
            await _send_problem(
                send,
                400,
                f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters",
                path,
                reason="IDEMPOTENCY_KEY_INVALID",
                errors=[{"field": "Idempotency-Key", "description": "1..255 characters"}],
            )
            return
        # Read the whole body: it is hashed, then handed to the route unchanged.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await _send_problem(send, 413, "request body too large", path)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        query = scope.get("query_string", b"")
        fingerprint = hashlib.sha256(query + b"\0" + body).hexdigest()
        now = time.monotonic()
        self._expire(now)
        store_key = (caller_key(self.verifier, scope), path, key)
        existing = self._store.get(store_key)
        if existing is not None:
            if existing.fingerprint != fingerprint:
                await _send_problem(
                    send,
                    422,
                    "this Idempotency-Key was used with a different request body",
                    path,
                    slug="idempotency-key-reused",
                    reason="IDEMPOTENCY_KEY_REUSED",
                )
                return
            if not existing.done:
                await _send_problem(
                    send,
                    409,
                    "a request with this Idempotency-Key is still being processed",
                    path,
                    slug="idempotency-key-in-flight",
                    reason="IDEMPOTENCY_KEY_IN_FLIGHT",
                    headers={"Retry-After": "1"},
                )
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": existing.status,
                    "headers": [*(existing.headers or []), (b"idempotent-replayed", b"true")],
                }
            )
            await send({"type": "http.response.body", "body": existing.body})
            return
        entry = _Remembered(fingerprint=fingerprint, expires=now + self.ttl_s)
        self._store[store_key] = entry
        delivered = False

        async def replay_receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        parts: list[bytes] = []
        remembered = False

        def remember() -> None:
            # Before the last byte goes out: a client may repeat the request the moment it has
            # the answer, and must then get the replay, not "still in flight".
            nonlocal remembered
            remembered = True
            if entry.status and entry.status < 500 and entry.status != 429:
                entry.body = b"".join(parts)
                entry.done = True
            else:
                self._store.pop(store_key, None)

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
                entry.headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"x-ratelimit-")
                ]
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    remember()
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        finally:
            if not remembered:
                entry.status = 0  # no complete answer: forget the key
                remember()
