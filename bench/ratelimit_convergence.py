"""Rate-limit convergence figures: how close the adaptive buckets get to upstream limits
nobody told the orchestrator.

Runs the end-to-end convergence scenario of ``tests/e2e/test_ratelimit_convergence.py`` (three
simulated hosts at 40, 80 and 120 requests/s answering 429 + Retry-After beyond that, 1,000
jobs each, real scheduler, leases service, Redis and SDK workers) and prints, as
``name value unit``:

* ``ratelimit_convergence_429_share_pct``        429s among all upstream calls after 10 s
* ``ratelimit_convergence_429_share_<host>_pct`` the same per host
* ``ratelimit_convergence_slowdown_x``           burn-down time / ideal (slowest host's jobs / R)

These depend on the machine's speed, which is why they are figures and the test asserts only
the mechanism.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "tests/e2e/test_ratelimit_convergence.py"


def convergence_figures() -> dict[str, tuple[float, str]]:
    """Runs the scenario once; returns ``{name: (value, unit)}``.

    Raises:
        RuntimeError: the scenario failed (its output is in the message).
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        env = {**os.environ, "ORCH_CONVERGENCE_FIGURES": str(out)}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                SCENARIO,
                "-q",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"convergence scenario failed:\n{done.stdout[-4000:]}")
        data = json.loads(out.read_text(encoding="utf-8"))
    figures = {
        "ratelimit_convergence_429_share_pct": (
            100 * data["hosts"]["all"]["share_after_10s"],
            "%",
        ),
        "ratelimit_convergence_slowdown_x": (data["total_s"] / data["ideal_s"], "x"),
    }
    for host, values in sorted(data["hosts"].items()):
        if host != "all":
            figures[f"ratelimit_convergence_429_share_{host}_pct"] = (
                100 * values["share_after_10s"],
                "%",
            )
    return figures
