"""python -m orchestrator_ratelimit: run the ratelimit service until SIGTERM."""

from __future__ import annotations

from orchestrator_grpckit import service_main
from orchestrator_ratelimit._app import build_service


def main() -> None:
    service_main("ratelimit", build_service)


if __name__ == "__main__":
    main()
