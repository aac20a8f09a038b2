"""Fixtures: a real GrpcService on port 0 with a tiny raw-bytes test servicer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import pytest
import pytest_asyncio

from orchestrator_core.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    LeaseLost,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from orchestrator_grpckit import (
    GrpcService,
    ServiceConfig,
    TokenVerifier,
    current_principal,
    current_request_id,
    mint_dev_token,
)

SECRET = "unit-test-hs256-secret-0123456789abcdef"
PROBE = "test.v1.Probe"
ADMIN_ONLY = f"/{PROBE}/AdminOnly"


def _who() -> bytes:
    principal = current_principal()
    return json.dumps(
        {
            "subject": principal.subject,
            "tenant": principal.tenant,
            "tenants": list(principal.tenants),
            "scopes": sorted(principal.scopes),
            "job_types": list(principal.job_types),
            "request_id": current_request_id(),
        }
    ).encode()


class InternalBoom(RuntimeError):
    """A bug in a servicer: its message must never reach the client."""


def _error(kind: str) -> Exception:
    errors: dict[str, Exception] = {
        "not_found": NotFound("job", "0190-abc"),
        "invalid": InvalidArgument(
            "bad request",
            [
                FieldViolation("retry_policy.max_attempts", "must be >= 1"),
                FieldViolation("job_type", "must not be empty"),
            ],
        ),
        "precondition": FailedPrecondition(
            "run is paused", reason="RUN_PAUSED", metadata={"run_id": "r1"}
        ),
        "lease_lost": LeaseLost("job-1", "lease-9"),
        "exhausted": ResourceExhausted(
            "queue quota full", retry_after_s=2.5, reason="QUOTA_EXCEEDED"
        ),
        "denied": PermissionDenied("nope", required_scope="orch:quota"),
        "unavailable": Unavailable("database unreachable"),
        "boom": InternalBoom("secret connection string postgres://u:pw@db"),
    }
    return errors[kind]


async def _echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return _who()


async def _raise(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    raise _error(request.decode())


async def _operate(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    current_principal().require_scope("orch:operate")
    return b"operated"


async def _stream(
    request: bytes, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[bytes]:
    # request: b"<count>" or b"<count>:<error kind>" (raise after count items)
    count, _, kind = request.decode().partition(":")
    for i in range(int(count)):
        yield str(i).encode()
    if kind:
        raise _error(kind)


async def _write_stream(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    # Coroutine-style server streaming with context.write().
    await context.write(b"a")
    await context.write(b"b")


async def _collect(
    request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
) -> bytes:
    parts = [item async for item in request_iterator]
    if b"invalid" in parts:
        raise _error("invalid")
    return b"|".join(parts) + b"@" + current_principal().tenant.encode()


async def _chat(
    request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[bytes]:
    async for item in request_iterator:
        if item == b"boom":
            raise _error("boom")
        yield item.upper()


async def _slow(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    await asyncio.sleep(float(request.decode()))
    return b"done"


PROBE_HANDLER = grpc.method_handlers_generic_handler(
    PROBE,
    {
        "Echo": grpc.unary_unary_rpc_method_handler(_echo),
        "Raise": grpc.unary_unary_rpc_method_handler(_raise),
        "Operate": grpc.unary_unary_rpc_method_handler(_operate),
        "AdminOnly": grpc.unary_unary_rpc_method_handler(_echo),
        "Slow": grpc.unary_unary_rpc_method_handler(_slow),
        "Stream": grpc.unary_stream_rpc_method_handler(_stream),
        "WriteStream": grpc.unary_stream_rpc_method_handler(_write_stream),
        "Collect": grpc.stream_unary_rpc_method_handler(_collect),
        "Chat": grpc.stream_stream_rpc_method_handler(_chat),
    },
)


def add_probe(servicer: object, server: grpc.aio.Server) -> None:
    """An ``add_XServicer_to_server`` look-alike for the generic handler."""
    server.add_generic_rpc_handlers((PROBE_HANDLER,))


def _probe_config(**overrides: Any) -> ServiceConfig:
    values: dict[str, Any] = {
        "service_name": "probe",
        "grpc_port": 0,
        "metrics_port": 0,
        "auth_hs256_secret": SECRET,
        "shutdown_grace_s": 0.5,
    }
    values.update(overrides)
    return ServiceConfig(**values)


def _mint(
    tenants: Sequence[str] = ("acme",),
    scopes: Sequence[str] = ("orch:read",),
    **kwargs: Any,
) -> str:
    return mint_dev_token(SECRET, "alice", tenants, scopes, **kwargs)


ServiceFactory = Callable[..., Any]


@pytest_asyncio.fixture
async def make_service() -> AsyncIterator[ServiceFactory]:
    """Start GrpcServices (port 0) on demand; all are stopped at teardown."""
    started: list[GrpcService] = []

    async def factory(
        *,
        config: ServiceConfig | None = None,
        verifier: TokenVerifier | None = None,
        **kwargs: Any,
    ) -> GrpcService:
        kwargs.setdefault("method_scopes", {ADMIN_ONLY: "orch:admin"})
        service = GrpcService(
            config or _probe_config(),
            [(add_probe, None, PROBE)],
            verifier=verifier,
            **kwargs,
        )
        await service.start()
        started.append(service)
        return service

    yield factory
    for service in started:
        await service.stop(0)


@pytest_asyncio.fixture
async def service(make_service: ServiceFactory) -> GrpcService:
    result: GrpcService = await make_service()
    return result


@pytest_asyncio.fixture
async def channel(service: GrpcService) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as chan:
        yield chan


@pytest.fixture
def secret() -> str:
    """The HS256 secret the test services verify with."""
    return SECRET


@pytest.fixture
def probe_config() -> Callable[..., ServiceConfig]:
    """Factory of ServiceConfig for tests (ports 0, test secret, 0.5 s grace)."""
    return _probe_config


@pytest.fixture
def mint() -> Callable[..., str]:
    """mint(tenants=("acme",), scopes=("orch:read",), **mint_dev_token kwargs) -> token."""
    return _mint


@pytest.fixture
def auth() -> Callable[..., tuple[tuple[str, str], ...]]:
    """auth(token, *extra_pairs) -> call metadata with the bearer token."""

    def build(tok: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {tok}"), *extra)

    return build
