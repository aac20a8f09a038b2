"""python -m orchestrator_leases: run the leases service until SIGTERM.

Env: the common ``ORCH_*`` variables of orchestrator_grpckit (leases: gRPC port 50052,
metrics 9103) plus ``ORCH_LEASE_TTL_S`` (30), ``ORCH_CLAIM_BATCH`` (100),
``ORCH_WATCHDOG_INTERVAL_S`` (1) and ``ORCH_COMPLETER_FLUSH_MS`` (2).
"""

from __future__ import annotations

from orchestrator_grpckit import service_main
from orchestrator_leases._app import build_service


def main() -> None:
    service_main("leases", build_service)


if __name__ == "__main__":
    main()
