"""Security headers on every HTTP answer of the gateway: REST, problem answers, event
streams, the Console and its assets (docs/gateway.md, "Security headers").

Why each one:

* ``Content-Security-Policy``: the Console is one module script and one stylesheet from
  ``/assets`` (no inline script: ``tests/gateway/test_console_build.py`` checks the build), so
  scripts, styles, fetches, EventSource and WebSocket are limited to this origin; an injected
  ``<script>`` or an inline handler does not run, and ``frame-ancestors 'none'`` forbids
  framing (click-jacking). The one exception is FastAPI's ``/api/docs`` page, whose Swagger UI
  comes from a CDN with an inline bootstrap script: it gets a policy that allows exactly that.
* ``X-Content-Type-Options: nosniff``: a JSON answer is never run as a script.
* ``Referrer-Policy: no-referrer``: run and job URLs do not leak to other sites.
* ``X-Frame-Options: DENY``: ``frame-ancestors`` for browsers that predate CSP 2.
* ``Strict-Transport-Security``: only when the request came over TLS, directly or through a
  proxy that terminated it (``X-Forwarded-Proto: https``, Envoy in deploy/k8s). Browsers ignore
  the header on plain HTTP, so a spoofed ``X-Forwarded-Proto`` gains nothing.

A header a route set itself is left alone. Implemented as plain ASGI (not Starlette's
``BaseHTTPMiddleware``) so streamed answers (SSE) pass through unbuffered.
"""

from __future__ import annotations

from orchestrator_gateway._middleware import ASGIApp, Message, Receive, Scope, Send, header

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# /api/docs only: Swagger UI's bundle and stylesheet from jsDelivr plus FastAPI's inline
# bootstrap script; it fetches the OpenAPI document from this origin.
DOCS_PATH = "/api/docs"
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.jsdelivr.net; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000"
STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def came_over_tls(scope: Scope) -> bool:
    """The request reached us over TLS, or a proxy says it reached the proxy so."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    forwarded = header(scope, b"x-forwarded-proto") or ""
    return forwarded.split(",")[0].strip().lower() == "https"


class SecurityHeadersMiddleware:
    """Adds the security headers above to every HTTP response start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (
            DOCS_CONTENT_SECURITY_POLICY if scope["path"] == DOCS_PATH else CONTENT_SECURITY_POLICY
        )
        extra = [*STATIC_HEADERS, (b"content-security-policy", csp.encode())]
        if came_over_tls(scope):
            extra.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
