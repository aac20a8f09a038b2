"""python -m orchestrator_scheduler: run the scheduler service until SIGTERM."""

from __future__ import annotations

from orchestrator_grpckit import service_main
from orchestrator_scheduler._app import build_service


def main() -> None:
    service_main("scheduler", build_service)


if __name__ == "__main__":
    main()
