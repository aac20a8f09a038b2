"""The whole stack for gateway, CLI and Console tests: scheduler (with events and
operations), leases, ratelimit and the gateway over real HTTP, served by one event loop in a
background thread, so both async tests (httpx.AsyncClient) and synchronous callers (the
``stella`` CLI, Playwright) reach it over real sockets. Tenants are unique per session, so
parallel sessions sharing PostgreSQL and Redis never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import DEV_SECRET, REDIS_URL, migrated_database, service_config

KEEPALIVE_S = 0.5


@dataclass(frozen=True)
class Stack:
    """Addresses of a running stack and how to mint tokens for it."""

    base_url: str
    api: str
    scheduler: str
    leases: str
    tenant: str
    other_tenant: str
    database_url: str
    ratelimit: str
    audit: str
    redis_prefix: str

    def gateway_settings(self, **overrides: object):
        """Settings of another gateway replica in front of this stack's services, sharing
        its PostgreSQL and Redis (overrides as for ``GatewaySettings``)."""
        from orchestrator_gateway import GatewaySettings

        values: dict[str, object] = {
            "http_port": 0,
            "scheduler_target": self.scheduler,
            "ratelimit_target": self.ratelimit,
            "audit_target": self.audit,
            "auth_hs256_secret": DEV_SECRET,
            "database_url": self.database_url,
            "redis_url": REDIS_URL,
            "ratelimit_key_prefix": self.redis_prefix,
            # Generous: a loaded CI machine must not make the limit fail open by accident.
            "redis_timeout_s": 5.0,
            "rate_per_s": 1000.0,
            "rate_burst": 5000,
        }
        return GatewaySettings(**(values | overrides))  # type: ignore[arg-type]

    def token(
        self,
        scopes: tuple[str, ...] = ("orch:read", "orch:operate"),
        *,
        tenant: str | None = None,
        subject: str = "tester",
    ) -> str:
        from orchestrator_grpckit import mint_dev_token

        return mint_dev_token(DEV_SECRET, subject, [tenant or self.tenant], scopes)

    def headers(self, scopes: tuple[str, ...] = ("orch:read", "orch:operate"), **kw) -> dict:
        return {"Authorization": f"Bearer {self.token(scopes, **kw)}"}


class _Runner:
    """Runs the services on a private event loop in a daemon thread."""

    def __init__(self, database_url: str, gateway_env: dict[str, str]) -> None:
        self.database_url = database_url
        self.redis_prefix = f"orch:gwtest:{uuid.uuid4().hex[:8]}:"
        self.gateway_env = gateway_env
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.ports: dict[str, int] = {}
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, name="gateway-stack", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the fixture
            self.error = exc
            self.ready.set()

    async def _serve(self) -> None:
        import uvicorn

        from orchestrator_audit import build_service as build_audit
        from orchestrator_gateway import GatewaySettings, create_app
        from orchestrator_leases import LeaseSettings
        from orchestrator_leases import build_service as build_leases
        from orchestrator_ratelimit import RatelimitSettings
        from orchestrator_ratelimit import build_service as build_ratelimit
        from orchestrator_scheduler import build_service as build_scheduler

        self._stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            # The keep-alive interval is read when the scheduler is built: set it only then.
            os.environ["ORCH_STREAM_KEEPALIVE_S"] = str(KEEPALIVE_S)
            try:
                scheduler = await stack.enter_async_context(
                    build_scheduler(service_config("scheduler", self.database_url))
                )
            finally:
                os.environ.pop("ORCH_STREAM_KEEPALIVE_S", None)
            leases = await stack.enter_async_context(
                build_leases(
                    service_config("leases", self.database_url),
                    settings=LeaseSettings(lease_ttl_s=30.0, watchdog_interval_s=0.5),
                )
            )
            ratelimit = await stack.enter_async_context(
                build_ratelimit(
                    service_config("ratelimit", self.database_url),
                    redis_url=REDIS_URL,
                    settings=RatelimitSettings(envoy_port=0),
                )
            )
            audit = await stack.enter_async_context(
                build_audit(service_config("audit", self.database_url))
            )
            await scheduler.start()
            await leases.start()
            await ratelimit.start()
            await audit.start()
            settings = GatewaySettings(
                http_port=0,
                scheduler_target=f"127.0.0.1:{scheduler.port}",
                ratelimit_target=f"127.0.0.1:{ratelimit.port}",
                audit_target=self.gateway_env.get("audit_target", f"127.0.0.1:{audit.port}"),
                auth_hs256_secret=DEV_SECRET,
                database_url=self.database_url,
                redis_url=REDIS_URL,
                ratelimit_key_prefix=self.redis_prefix,
                redis_timeout_s=5.0,
                rate_per_s=float(self.gateway_env.get("rate_per_s", 1000)),
                rate_burst=int(self.gateway_env.get("rate_burst", 5000)),
                stream_buffer=int(self.gateway_env.get("stream_buffer", 1000)),
            )
            config = uvicorn.Config(
                create_app(settings),
                host="127.0.0.1",
                port=0,
                log_level="warning",
                lifespan="on",
                ws="websockets-sansio",
            )
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve())
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
            self.ports = {
                "http": server.servers[0].sockets[0].getsockname()[1],
                "scheduler": scheduler.port,
                "leases": leases.port,
                "ratelimit": ratelimit.port,
                "audit": audit.port,
            }
            self.ready.set()
            await self._stop.wait()
            server.should_exit = True
            await task
            await leases.stop()
            await ratelimit.stop()
            await scheduler.stop()

    def start(self) -> None:
        self.thread.start()
        if not self.ready.wait(60):
            raise RuntimeError("the gateway stack did not start within 60 s")
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)


def _start_stack(admin_url: str, prefix: str, **gateway_env: str) -> Iterator[Stack]:
    suffix = f"{os.getpid() % 100000}"
    tenant, other = f"gw{suffix}", f"gwx{suffix}"
    with migrated_database(admin_url, prefix, (tenant, other)) as url:
        runner = _Runner(url, gateway_env)
        runner.start()
        try:
            base = f"http://127.0.0.1:{runner.ports['http']}"
            yield Stack(
                base_url=base,
                api=f"{base}/api/v1/orchestrator",
                scheduler=f"127.0.0.1:{runner.ports['scheduler']}",
                leases=f"127.0.0.1:{runner.ports['leases']}",
                tenant=tenant,
                other_tenant=other,
                database_url=url,
                ratelimit=f"127.0.0.1:{runner.ports['ratelimit']}",
                audit=f"127.0.0.1:{runner.ports['audit']}",
                redis_prefix=runner.redis_prefix,
            )
        finally:
            runner.stop()


@pytest.fixture(scope="session")
def stack(admin_url: str) -> Iterator[Stack]:
    """The full stack with generous gateway rate limits."""
    yield from _start_stack(admin_url, "orch_gw")
