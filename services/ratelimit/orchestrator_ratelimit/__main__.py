"""python -m orchestrator_ratelimit: run the ratelimit service until SIGTERM."""

from __future__ import annotations

import asyncio

from orchestrator_grpckit import (
    ServiceConfig,
    configure_logging,
    exit_on_config_error,
    run_service,
    tracing,
)
from orchestrator_ratelimit._app import build_service


async def _main() -> None:
    config = ServiceConfig.from_env("ratelimit")
    configure_logging(config.log_level)
    with tracing(config.service_name):
        async with build_service(config) as service:
            await run_service(service)


def main() -> None:
    with exit_on_config_error("ratelimit"):
        asyncio.run(_main())


if __name__ == "__main__":
    main()
