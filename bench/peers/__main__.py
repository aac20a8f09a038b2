"""`python -m bench.peers [--jobs N] [--timeout S]`: the peer burn-downs on their own."""

from __future__ import annotations

import argparse
import os

from bench.peers import run_peers

ADMIN_URL = os.environ.get(
    "ORCH_TEST_DATABASE_URL",
    "postgresql://orchestrator:orchestrator@127.0.0.1:5432/orchestrator_test",
)


def main() -> None:
    parser = argparse.ArgumentParser(description="graphile-worker and Procrastinate burn-downs")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for everything")
    args = parser.parse_args()
    for name, value in run_peers(ADMIN_URL, args.jobs, timeout_s=args.timeout).items():
        print(f"{name} {value:.1f} jobs/s", flush=True)


if __name__ == "__main__":
    main()
