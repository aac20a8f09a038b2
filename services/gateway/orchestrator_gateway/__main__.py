"""python -m orchestrator_gateway: serve the gateway (REST, streams, Console) until SIGTERM."""

from __future__ import annotations

import uvicorn

from orchestrator_gateway._app import create_app
from orchestrator_gateway._settings import GatewaySettings
from orchestrator_grpckit import configure_logging, exit_on_config_error, tracing


def main() -> None:
    with exit_on_config_error("gateway"):
        settings = GatewaySettings.from_env()
        configure_logging("INFO", service="gateway")
        # Before create_app: the app instruments itself when a tracer provider is installed.
        with tracing("gateway"):
            app = create_app(settings)
            uvicorn.run(
                app,
                host=settings.bind_host,
                port=settings.http_port,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=5,
            )


if __name__ == "__main__":
    main()
