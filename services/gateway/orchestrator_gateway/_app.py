"""The FastAPI application: REST, streams, OpenAPI, problem+json, metrics and the Console."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator_core import OrchestratorError
from orchestrator_gateway import _routes
from orchestrator_gateway._clients import Clients
from orchestrator_gateway._event_feeds import EventHub
from orchestrator_gateway._idempotency import IdempotencyMiddleware
from orchestrator_gateway._problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    ProblemError,
    grpc_problem,
    problem_response,
    storage_problem,
)
from orchestrator_gateway._ratelimit import RateLimitMiddleware
from orchestrator_gateway._routes._deps import Reads
from orchestrator_gateway._security import SecurityHeadersMiddleware
from orchestrator_gateway._settings import GatewaySettings
from orchestrator_grpckit import TokenVerifier
from orchestrator_pg import (
    Database,
    IdempotencyKeyCleaner,
    IdempotencyStore,
    JobStore,
    OverviewStore,
    QuotaStore,
    TenantStore,
)
from orchestrator_redis import BucketConfig, BucketStore
from stella_orchestrator.telemetry import tracing_installed

API_VERSION = "1.0.0"
OPENAPI_PATH = "/.well-known/openapi"
_log = logging.getLogger("orchestrator_gateway")

REQUESTS = Counter(
    "orchestrator_gateway_requests_total",
    "REST requests by route template, method and status",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "orchestrator_gateway_request_duration_seconds",
    "REST request latency by route template",
    ["route", "method"],
)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """Build the gateway application.

    Args:
        settings: Configuration (default: from the environment).

    Returns:
        The ASGI application; serve it with uvicorn.

    Raises:
        ConfigError: A setting is unusable, e.g. the development secret beyond loopback.
    """
    settings = settings or GatewaySettings.from_env()
    settings.refuse_exposed_dev_defaults()
    verifier = TokenVerifier(settings.auth_hs256_secret, settings.ed25519_public_key_pem())

    # What replicas share (docs/gateway.md, "Replicas"): Idempotency-Key records in
    # PostgreSQL, per-caller buckets in Redis. Both are opened by the lifespan.
    database = Database(settings.database_url, min_size=1, max_size=settings.db_pool_max)
    buckets = BucketStore.connect(
        settings.redis_url,
        timeout_s=settings.redis_timeout_s,
        prefix=settings.ratelimit_key_prefix,
        default=BucketConfig(settings.rate_burst, settings.rate_per_s),
    )
    cleaner = IdempotencyKeyCleaner(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.clients = Clients(settings)
        app.state.event_hub = EventHub(app.state.clients, settings.stream_buffer)
        # The gateway starts without PostgreSQL (reads and plain POSTs go on; a POST with
        # Idempotency-Key answers 503 until the database is back).
        await database.open(wait=False)
        cleanup = asyncio.create_task(cleaner.run_forever(), name="idempotency-cleanup")
        try:
            yield
        finally:
            cleanup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cleanup
            await database.close()
            await buckets.aclose()
            await app.state.event_hub.aclose()
            await app.state.clients.close()

    app = FastAPI(
        title="Stella Orchestrator API",
        version=API_VERSION,
        summary="Sources, runs, jobs, dead letters, throttles and live events of the "
        "Stella Ops Source & Job Orchestrator.",
        description=(
            "REST/JSON over the orchestrator's gRPC services. Authenticate with "
            "`Authorization: Bearer <JWT>` (scopes orch:read, orch:operate, orch:quota, "
            "orch:backfill); the tenant comes from the token. Control actions need "
            "`X-Stella-Operator-Reason` (audited). Errors are RFC 9457 problem+json. Lists "
            "are cursor-paged with `page_size`/`page_token`. POSTs accept `Idempotency-Key`. "
            "Every /api response carries `X-RateLimit-*`; 429 carries `Retry-After`."
        ),
        openapi_url=OPENAPI_PATH,
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.verifier = verifier
    # The Console's own reads (charts and searches the services' lists do not answer),
    # isolated to the caller's tenant: _routes.insights.
    app.state.reads = Reads(
        JobStore(database), OverviewStore(database), QuotaStore(database), TenantStore(database)
    )
    app.include_router(_routes.router)

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.detail,
            request.url.path,
            slug=exc.slug,
            headers=exc.headers,
            **exc.extensions,
        )

    @app.exception_handler(grpc.aio.AioRpcError)
    async def on_grpc(request: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
        return grpc_problem(exc, request.url.path)

    @app.exception_handler(OrchestratorError)
    async def on_storage(request: Request, exc: OrchestratorError) -> JSONResponse:
        return storage_problem(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body",
                "description": str(err.get("msg", "invalid")),
            }
            for err in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['description']}" for e in errors[:5])
        return problem_response(
            400,
            f"invalid request: {detail}",
            request.url.path,
            reason="INVALID_REQUEST",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code,
            str(exc.detail),
            request.url.path,
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(ValueError)
    @app.exception_handler(OverflowError)
    async def on_out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # Raised while turning the request into protobuf (an integer past int64, an instant
        # past year 9999): the caller's input, not a server fault.
        return problem_response(
            400,
            f"invalid request: a value is out of range ({exc})",
            request.url.path,
            reason="VALUE_OUT_OF_RANGE",
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "internal error; the gateway logged the details", request.url.path
        )

    app.add_middleware(RequestMetricsMiddleware)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    _mount_console(app, settings.console_dir)
    if tracing_installed():
        _instrument(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
        schema["security"] = [{"bearer": []}]
        problem = {
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        }
        for path in schema.get("paths", {}).values():
            for method, operation in path.items():
                responses = operation.setdefault("responses", {})
                # Validation errors are 400 problem+json, not FastAPI's 422 JSON.
                responses.pop("422", None)
                if method == "post":
                    responses["422"] = {
                        "description": "Idempotency-Key reused with another body",
                        **problem,
                    }
                    responses["413"] = {"description": "Request body too large", **problem}
                for response in responses.values():
                    content = response.get("content", {})
                    if "application/json" in content and PROBLEM_MEDIA_TYPE in content:
                        # Errors are problem+json only.
                        del content["application/json"]
        for unused in ("HTTPValidationError", "ValidationError"):
            components["schemas"].pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    # Outermost first: security headers, rate limit, then idempotency (a replay still counts
    # against the limit).
    app.add_middleware(
        IdempotencyMiddleware,
        verifier=verifier,
        store=IdempotencyStore(database),
        ttl_s=settings.idempotency_ttl_s,
        wait_s=settings.idempotency_wait_s,
    )
    app.add_middleware(
        RateLimitMiddleware,
        verifier=verifier,
        buckets=buckets,
        rate_per_s=settings.rate_per_s,
        burst=settings.rate_burst,
    )
    # Outermost of all: refusals of the rate limit and idempotency layers carry them too.
    app.add_middleware(SecurityHeadersMiddleware)
    return app


class RequestMetricsMiddleware:
    """Counts requests and observes the time to the response's start, by route template.

    Pure ASGI on purpose: ``@app.middleware("http")`` (BaseHTTPMiddleware) passes every
    streamed chunk through a memory stream and a task, which made each SSE client's every
    event cost several times its own encoding.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def observed(message: Any) -> None:
            if message["type"] == "http.response.start":
                # The router sets scope["route"] in place before the endpoint answers.
                template = getattr(scope.get("route"), "path", "unmatched")
                method = scope["method"]
                REQUESTS.labels(template, method, str(message["status"])).inc()
                LATENCY.labels(template, method).observe(time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, observed)


def _instrument(app: FastAPI) -> None:
    """A SERVER span per request (docs/tracing.md); Caller.metadata forwards its context to
    the services. Probes and scrapes would only add noise, and so would a span per ASGI
    message."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="/healthz,/metrics", exclude_spans=["receive", "send"]
    )


def _mount_console(app: FastAPI, console_dir: Path) -> None:
    """Serve the built Console at ``/`` (index.html for every non-API path: client routing)."""
    index = console_dir / "index.html"
    assets = console_dir / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="console-assets")

    @app.get("/", include_in_schema=False)
    async def console_root() -> Response:
        if not index.is_file():
            return problem_response(404, "the Console is not built", "/")
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
