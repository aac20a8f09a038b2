"""python -m orchestrator_leases: run the leases service until SIGTERM.

Env: the common ``ORCH_*`` variables of orchestrator_grpckit (leases: gRPC port 50052,
metrics 9103) plus ``ORCH_LEASE_TTL_S`` (30), ``ORCH_CLAIM_BATCH`` (100),
``ORCH_WATCHDOG_INTERVAL_S`` (1) and ``ORCH_COMPLETER_FLUSH_MS`` (2).
"""

from __future__ import annotations

import asyncio

from orchestrator_grpckit import (
    ServiceConfig,
    configure_logging,
    exit_on_config_error,
    run_service,
    tracing,
)
from orchestrator_leases._app import build_service


async def _main() -> None:
    config = ServiceConfig.from_env("leases")
    configure_logging(config.log_level)
    with tracing(config.service_name):
        async with build_service(config) as service:
            await run_service(service)


def main() -> None:
    with exit_on_config_error("leases"):
        asyncio.run(_main())


if __name__ == "__main__":
    main()
