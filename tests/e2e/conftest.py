"""End-to-end fixtures: the scheduler and a leases service with a short lease TTL, both
in-process on free ports; worker processes run the Python SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import DEV_SECRET

E2E_LEASE_TTL_S = 3.0


@pytest.fixture(scope="session")
async def e2e_leases_target(database_url: str, tenants: tuple[str, str]) -> AsyncIterator[str]:
    from orchestrator_grpckit import ServiceConfig
    from orchestrator_leases import LeaseSettings, build_service

    config = ServiceConfig(
        service_name="leases",
        grpc_port=0,
        metrics_port=None,
        database_url=database_url,
        auth_hs256_secret=DEV_SECRET,
        shutdown_grace_s=1.0,
    )
    settings = LeaseSettings(lease_ttl_s=E2E_LEASE_TTL_S, watchdog_interval_s=0.2)
    async with build_service(config, settings=settings) as service:
        await service.start()
        try:
            yield f"127.0.0.1:{service.port}"
        finally:
            await service.stop()
