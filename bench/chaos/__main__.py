"""make chaos: a soak run that kills, restarts and cuts off parts of a replicated stack
while a long burn-down runs, then checks the ledger's invariants (docs/chaos.md).

    python -m bench.chaos [--jobs N] [--seconds S] [--standby] ...

Every option also reads an environment variable (CHAOS_JOBS, CHAOS_SECONDS, CHAOS_REPLICAS,
CHAOS_PY_WORKERS, CHAOS_GO_WORKERS, CHAOS_REDIS_DOWN_S, CHAOS_FAULTS, CHAOS_STANDBY,
CHAOS_KEEP), so ``make chaos CHAOS_SECONDS=1800`` works. Figures go to stdout as
``name value unit``; progress to stderr. Exit 1 when an invariant broke (each is printed).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bench.chaos._scenario import FAULTS, ChaosConfig, run_chaos


def _env(name: str, default: object) -> str:
    return os.environ.get(name, "").strip() or str(default)


def main() -> int:
    defaults = ChaosConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=int(_env("CHAOS_JOBS", defaults.jobs)))
    parser.add_argument(
        "--seconds", type=float, default=float(_env("CHAOS_SECONDS", defaults.seconds))
    )
    parser.add_argument(
        "--replicas", type=int, default=int(_env("CHAOS_REPLICAS", defaults.replicas))
    )
    parser.add_argument(
        "--python-workers", type=int, default=int(_env("CHAOS_PY_WORKERS", defaults.python_workers))
    )
    parser.add_argument(
        "--go-workers", type=int, default=int(_env("CHAOS_GO_WORKERS", defaults.go_workers))
    )
    parser.add_argument(
        "--redis-down-s",
        type=float,
        default=float(_env("CHAOS_REDIS_DOWN_S", defaults.redis_down_s)),
    )
    parser.add_argument(
        "--faults",
        default=_env("CHAOS_FAULTS", ",".join(FAULTS)),
        help=f"comma list, in order (default {','.join(FAULTS)}); empty for none",
    )
    parser.add_argument(
        "--standby",
        action="store_true",
        default=_env("CHAOS_STANDBY", "0") == "1",
        help="add a streaming standby and promote it mid-run (fault promote_standby)",
    )
    parser.add_argument(
        "--keep", action="store_true", default=_env("CHAOS_KEEP", "0") == "1",
        help="keep the run directory (logs, data) even when every invariant holds",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = ChaosConfig(
        jobs=args.jobs,
        seconds=args.seconds,
        replicas=args.replicas,
        python_workers=args.python_workers,
        go_workers=args.go_workers,
        redis_down_s=args.redis_down_s,
        faults=tuple(f for f in args.faults.split(",") if f),
        standby=args.standby,
        keep=args.keep,
        on_progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    result = run_chaos(config)
    for line in result.lines():
        print(line, flush=True)
    for problem in result.verdict.problems:
        print(f"INVARIANT BROKEN: {problem}", file=sys.stderr)
    if not result.ok:
        print(f"logs and data kept in {result.root}", file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
