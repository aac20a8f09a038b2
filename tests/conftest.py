"""Shared fixtures: a real PostgreSQL database per test session, tokens, and the scheduler
served in-process over a real gRPC channel.

The database comes from ORCH_TEST_DATABASE_URL (default: the local cluster that
scripts/services.sh starts). Each session creates a fresh database named after the
process, migrates it and drops it at the end, so parallel sessions never share state.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager

import grpc
import psycopg
import pytest

DEFAULT_TEST_ADMIN_URL = "postgresql://orchestrator:orchestrator@127.0.0.1:5432/orchestrator_test"
DEV_SECRET = "integration-test-secret-0123456789abcdef"
# The Redis the integration tests use (each test works under its own key prefix).
REDIS_URL = os.environ.get("ORCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def admin_url() -> str:
    return os.environ.get("ORCH_TEST_DATABASE_URL", DEFAULT_TEST_ADMIN_URL)


@contextmanager
def migrated_database(admin_url: str, prefix: str, tenants: tuple[str, ...] = ()) -> Iterator[str]:
    """A fresh database (named after ``prefix`` and the process), migrated, with ``tenants``
    registered; dropped on exit."""
    import asyncio

    from orchestrator_pg import create_database, drop_database, migrate

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        url = create_database(admin_url, name)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {admin_url}: {exc}\n"
            "start it with `scripts/services.sh start` or set ORCH_TEST_DATABASE_URL"
        )
    try:
        asyncio.run(migrate(url))
        with psycopg.connect(url, autocommit=True) as conn:
            for tenant in tenants:
                conn.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (tenant,))
        yield url
    finally:
        drop_database(admin_url, name)


@pytest.fixture(scope="session")
def database_url(admin_url: str) -> Iterator[str]:
    """A freshly migrated, empty database for this session."""
    with migrated_database(admin_url, "orch_it") as url:
        yield url


@pytest.fixture(scope="session")
def tenants(database_url: str) -> tuple[str, str]:
    """Two registered tenants: the one tests act as, and a stranger."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for tenant in ("acme", "globex"):
            conn.execute(
                "INSERT INTO orchestrator.tenants (id) VALUES (%s) ON CONFLICT DO NOTHING",
                (tenant,),
            )
    return "acme", "globex"


@pytest.fixture(scope="session")
def make_token():
    from orchestrator_grpckit import mint_dev_token

    def make(
        tenant: str = "acme",
        scopes: tuple[str, ...] = ("orch:read", "orch:operate"),
        subject: str = "tester",
    ) -> str:
        return mint_dev_token(DEV_SECRET, subject, [tenant], scopes)

    return make


def service_config(service_name: str, database_url: str):
    """A ServiceConfig for an in-process test server on a free port."""
    from orchestrator_grpckit import ServiceConfig

    return ServiceConfig(
        service_name=service_name,
        grpc_port=0,
        metrics_port=None,
        database_url=database_url,
        auth_hs256_secret=DEV_SECRET,
        shutdown_grace_s=1.0,
    )


@pytest.fixture(scope="session")
async def scheduler_target(database_url: str, tenants: tuple[str, str]) -> AsyncIterator[str]:
    """The scheduler service on a free port, for the whole session. It fires no schedules:
    tests drive firing with their own clocks (tests/integration/test_schedules.py)."""
    from orchestrator_scheduler import build_service

    async with build_service(
        service_config("scheduler", database_url), schedule_firing=False
    ) as service:
        await service.start()
        try:
            yield f"127.0.0.1:{service.port}"
        finally:
            await service.stop()


LEASE_TTL_S = 3.0


@pytest.fixture(scope="session")
async def leases_target(database_url: str, tenants: tuple[str, str]) -> AsyncIterator[str]:
    """The leases service on a free port, for the whole session: a short lease TTL and a
    fast watchdog so expiry paths run in seconds."""
    from orchestrator_leases import LeaseSettings, build_service

    settings = LeaseSettings(lease_ttl_s=LEASE_TTL_S, watchdog_interval_s=0.2)
    async with build_service(service_config("leases", database_url), settings=settings) as service:
        await service.start()
        try:
            yield f"127.0.0.1:{service.port}"
        finally:
            await service.stop()


class Stub:
    """A SchedulerService stub that sends a bearer token with every call."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        from stella.orchestrator.v1 import scheduler_pb2_grpc

        self._stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {token}"),)

    def __getattr__(self, name: str):
        method = getattr(self._stub, name)

        def call(request, **kwargs):
            return method(request, metadata=self._metadata, **kwargs)

        return call


@pytest.fixture
async def channel(scheduler_target: str) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(scheduler_target) as ch:
        yield ch


@pytest.fixture
def scheduler(channel: grpc.aio.Channel, make_token) -> Stub:
    """Acts as tenant acme with read + operate scopes."""
    return Stub(channel, make_token("acme"))


@pytest.fixture
def stranger(channel: grpc.aio.Channel, make_token) -> Stub:
    """Acts as tenant globex."""
    return Stub(channel, make_token("globex"))


@pytest.fixture
def reader(channel: grpc.aio.Channel, make_token) -> Stub:
    """Tenant acme, read-only."""
    return Stub(channel, make_token("acme", ("orch:read",)))


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A plain connection to inspect the ledger directly."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


async def eventually(
    check: Callable[[], Awaitable[object]], what: str, *, timeout_s: float = 90.0
) -> object:
    """Polls ``check`` (with backoff, up to 1 s apart) until it returns something truthy and
    returns that; fails naming ``what`` after ``timeout_s`` (generous: CI machines are busy)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    delay = 0.05
    while True:
        got = await check()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
