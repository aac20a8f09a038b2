"""The ``main`` every gRPC service's ``__main__`` runs: one place for the order of start-up
(settings from the environment, JSON logging, tracing, the service until SIGTERM) and for
a bad setting becoming exit status 2 with one line that names the variable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import ParamSpec, Protocol

from orchestrator_grpckit._config import ServiceConfig
from orchestrator_grpckit._logging import configure_logging
from orchestrator_grpckit._server import GrpcService, exit_on_config_error, run_service
from orchestrator_grpckit._tracing import tracing

BuildService = Callable[[ServiceConfig], AbstractAsyncContextManager[GrpcService]]
"""A service's composition root: its ``_app.build_service`` with no keyword arguments."""

P = ParamSpec("P")


class ServiceParts(Protocol):
    """What a service's ``build_app`` yields: its parts, the GrpcService among them."""

    @property
    def service(self) -> GrpcService: ...


def service_of(
    build_app: Callable[P, AbstractAsyncContextManager[ServiceParts]],
) -> Callable[P, AbstractAsyncContextManager[GrpcService]]:
    """A service's ``build_service`` from its ``build_app``: the same build and clean-up,
    yielding only the GrpcService (``__main__`` and most tests need no more)."""

    @asynccontextmanager
    async def build_service(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[GrpcService]:
        async with build_app(*args, **kwargs) as parts:
            yield parts.service

    return build_service


def service_main(
    service_name: str, build_service: BuildService, *, log_service: str | None = None
) -> None:
    """Run a gRPC service from the environment until SIGTERM.

    Args:
        service_name: The service's name in ``ServiceConfig.from_env`` (its ports and
            defaults) and in the configuration-error line.
        build_service: Builds the service from its settings.
        log_service: Service name added to every log line (none by default).

    Raises:
        SystemExit: Status 2 on a configuration error.
        BackgroundTaskFailed: A background task of the service died.
    """

    async def _main() -> None:
        config = ServiceConfig.from_env(service_name)
        configure_logging(config.log_level, service=log_service)
        with tracing(config.service_name):
            async with build_service(config) as service:
                await run_service(service)

    with exit_on_config_error(service_name):
        asyncio.run(_main())
