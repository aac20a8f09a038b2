"""python -m orchestrator_audit: run the audit service until SIGTERM."""

from __future__ import annotations

import asyncio

from orchestrator_audit._app import build_service
from orchestrator_grpckit import (
    ServiceConfig,
    configure_logging,
    exit_on_config_error,
    run_service,
    tracing,
)


async def _main() -> None:
    config = ServiceConfig.from_env("audit")
    configure_logging(config.log_level, service="audit")
    with tracing(config.service_name):
        async with build_service(config) as service:
            await run_service(service)


def main() -> None:
    with exit_on_config_error("audit"):
        asyncio.run(_main())


if __name__ == "__main__":
    main()
