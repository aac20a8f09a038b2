"""Health tells the truth about PostgreSQL: a service whose database refuses connections
reports NOT_SERVING (overall and per gRPC service) and turns SERVING again by itself once the
database is back; the process never exits over it. Every database-backed service is checked."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator_grpckit import LIVENESS_SERVICE, GrpcService, ServiceConfig
from tests.conftest import service_config

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Generous: the probe runs every PROBE_S, but a loaded CI machine may be slow to schedule it.
DEADLINE_S = 60.0
PROBE_S = 0.2


def _scheduler(config: ServiceConfig) -> AbstractAsyncContextManager[GrpcService]:
    from orchestrator_scheduler import build_service

    return build_service(config, schedule_firing=False)


def _leases(config: ServiceConfig) -> AbstractAsyncContextManager[GrpcService]:
    from orchestrator_leases import build_service

    return build_service(config)


def _audit(config: ServiceConfig) -> AbstractAsyncContextManager[GrpcService]:
    from orchestrator_audit import build_service

    return build_service(config)


def _set_connections(url: str, allowed: bool) -> None:
    """Let connections into the test database, or refuse them and cut the open ones."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, autocommit=True, dbname="postgres") as admin:
        admin.execute(
            f"ALTER DATABASE {psycopg.sql.Identifier(name).as_string(admin)}"
            f" WITH ALLOW_CONNECTIONS {'true' if allowed else 'false'}"
        )
        if not allowed:
            admin.execute(
                # Client backends only: an autovacuum worker busy in the fresh database is a
                # superuser process this role may not terminate (it failed a CI run so).
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND backend_type = 'client backend'",
                (name,),
            )


async def _statuses(target: str, names: tuple[str, ...]) -> set[int]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return {
            (await stub.Check(health_pb2.HealthCheckRequest(service=n), timeout=10)).status
            for n in names
        }


async def _until(target: str, names: tuple[str, ...], status: int) -> None:
    """Wait (Health.Watch, no polling) until every name reports ``status``."""

    async def one(stub: health_pb2_grpc.HealthStub, name: str) -> None:
        async for update in stub.Watch(health_pb2.HealthCheckRequest(service=name)):
            if update.status == status:
                return

    async with grpc.aio.insecure_channel(target) as channel, asyncio.timeout(DEADLINE_S):
        stub = health_pb2_grpc.HealthStub(channel)
        await asyncio.gather(*(one(stub, name) for name in names))


@pytest.fixture
async def reopened(migrated_db: str) -> AsyncIterator[str]:
    yield migrated_db
    _set_connections(migrated_db, True)  # so the database can be dropped whatever happened


@pytest.mark.parametrize(
    ("name", "build"), [("scheduler", _scheduler), ("leases", _leases), ("audit", _audit)]
)
async def test_not_serving_while_postgresql_refuses_then_serving_again(
    reopened: str,
    name: str,
    build: Callable[[ServiceConfig], AbstractAsyncContextManager[GrpcService]],
) -> None:
    config = dataclasses.replace(service_config(name, reopened), health_probe_s=PROBE_S)
    async with build(config) as service:
        await service.start()
        try:
            target = f"127.0.0.1:{service.port}"
            names = ("", *service.service_names)
            assert await _statuses(target, names) == {SERVING}
            assert service.dependencies_down == ()

            _set_connections(reopened, False)
            await _until(target, names, NOT_SERVING)
            # liveness is not readiness: the process is fine, restarting it would not help
            assert await _statuses(target, (LIVENESS_SERVICE,)) == {SERVING}
            # The gauge is per process and other services of this test process (the session's
            # fixtures) set it too; this service's own view is what the status follows.
            assert service.dependencies_down == ("postgresql",)
            await asyncio.sleep(5 * PROBE_S)
            assert await _statuses(target, names) == {NOT_SERVING}, "flapped while still down"

            _set_connections(reopened, True)
            await _until(target, names, SERVING)
            assert service.dependencies_down == ()
        finally:
            await service.stop()
