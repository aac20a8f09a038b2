"""python -m orchestrator_audit: run the audit service until SIGTERM."""

from __future__ import annotations

from orchestrator_audit._app import build_service
from orchestrator_grpckit import service_main


def main() -> None:
    service_main("audit", build_service, log_service="audit")


if __name__ == "__main__":
    main()
