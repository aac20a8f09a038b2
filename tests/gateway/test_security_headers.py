"""Security headers on every kind of gateway answer, over real HTTP (docs/gateway.md,
"Security headers"): the Console, its assets, REST answers and problems, streams' refusals,
health and metrics; HSTS only behind TLS."""

from __future__ import annotations

import re

import httpx
import pytest

from orchestrator_gateway._security import CONTENT_SECURITY_POLICY, DOCS_CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.integration


def _directives(policy: str) -> dict[str, str]:
    return dict([*part.strip().split(" ", 1), ""][:2] for part in policy.split(";") if part.strip())


def _assert_secured(resp: httpx.Response, csp: str = CONTENT_SECURITY_POLICY) -> None:
    assert resp.headers["content-security-policy"] == csp, resp.request.url
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert resp.headers["x-frame-options"] == "DENY"


def test_the_policy_is_strict() -> None:
    policy = _directives(CONTENT_SECURITY_POLICY)
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    # No inline script or style, no eval, nothing from another origin.
    for directive in ("script-src", "style-src", "connect-src"):
        assert policy[directive] == "'self'", directive
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert "http" not in CONTENT_SECURITY_POLICY
    assert _directives(DOCS_CONTENT_SECURITY_POLICY)["frame-ancestors"] == "'none'"


async def test_every_answer_carries_the_headers(stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=20) as anon:
        console = await anon.get("/")
        assert console.status_code == 200
        # The page loads only what the policy allows: its own module script and stylesheet.
        html = console.text
        assert re.findall(r"<script\b[^>]*>", html) == [
            '<script type="module" src="/assets/app.js">'
        ]
        deep_link = await anon.get("/runs/some-run")  # client routing: index.html again
        asset = await anon.get("/assets/app.js")
        problem = await anon.get("/api/v1/orchestrator/sources")  # no token: 401 problem
        assert problem.status_code == 401
        health = await anon.get("/healthz")
        metrics = await anon.get("/metrics")
        for resp in (console, deep_link, asset, problem, health, metrics):
            _assert_secured(resp)
            assert "strict-transport-security" not in resp.headers
        docs = await anon.get("/api/docs")
        _assert_secured(docs, DOCS_CONTENT_SECURITY_POLICY)
    async with httpx.AsyncClient(
        base_url=stack.base_url, headers=stack.headers(), timeout=20
    ) as client:
        listed = await client.get("/api/v1/orchestrator/sources")
        assert listed.status_code == 200
        _assert_secured(listed)


async def test_hsts_only_behind_tls(stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=20) as anon:
        for proto in ("https", "https,http", "HTTPS"):
            resp = await anon.get("/", headers={"X-Forwarded-Proto": proto})
            assert resp.headers["strict-transport-security"] == "max-age=31536000", proto
        plain = await anon.get("/", headers={"X-Forwarded-Proto": "http"})
        assert "strict-transport-security" not in plain.headers
