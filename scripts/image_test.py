"""make image-test: the demo workload against the suite running from the container image.

The demo (``python -m demo --exit``, as ``make demo`` runs it) starts its stack through
scripts/stack.py; with ``ORCH_STACK_IMAGE`` set, that stack is the image: migrations and the
demo tenant from ``stella`` in the image, then one container per service (scheduler, leases,
ratelimit, audit, gateway), read-only root, on the host's network. PostgreSQL and Redis are
the host's. The simulated upstream and the worker fleet stay on the host: they are the
workload, not the suite.

Its own ports (28150-28159 and gateway HTTP 8185, all below the kernel's ephemeral range,
from which tests draw their free ports; any ``ORCH_*`` port set in the environment wins), a
database recreated for each run (``orchestrator_image_test``) and a Redis key prefix
of its own keep it apart from stacks on the default ports. It fails unless the demo exits 0,
every demo job ended succeeded, dead-lettered with an error class and message, or canceled
because its upstream job died, and no container of the run is left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from orchestrator_pg import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "ORCH_IMAGE_TEST_ADMIN_URL",
    "postgresql://orchestrator:orchestrator@127.0.0.1:5432/orchestrator",
)
DATABASE = "orchestrator_image_test"
PORTS = {
    "ORCH_GATEWAY_HTTP_PORT": 8185,
    "ORCH_GATEWAY_METRICS_PORT": 28150,
    "ORCH_SCHEDULER_GRPC_PORT": 28151,
    "ORCH_LEASES_GRPC_PORT": 28152,
    "ORCH_RATELIMIT_GRPC_PORT": 28153,
    "ORCH_AUDIT_GRPC_PORT": 28154,
    "ORCH_RATELIMIT_ENVOY_GRPC_PORT": 28155,
    "ORCH_SCHEDULER_METRICS_PORT": 28156,
    "ORCH_LEASES_METRICS_PORT": 28157,
    "ORCH_RATELIMIT_METRICS_PORT": 28158,
    "ORCH_AUDIT_METRICS_PORT": 28159,
}
DEMO_TIMEOUT_S = 1200  # the demo's own limit is 600 s of workload plus start and stop


def _fail(message: str) -> int:
    print(f"image-test: FAILED: {message}", file=sys.stderr)
    return 1


def _leftover_containers(env: dict[str, str]) -> list[str]:
    names = subprocess.run(
        ["podman", "ps", "--all", "--format", "{{.Names}}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ports = {env[k] for k in PORTS}
    return [n for n in names if n.startswith("stella-") and n.rsplit("-", 1)[-1] in ports]


def _check_jobs(database_url: str) -> list[str]:
    """Every problem with the demo's jobs, as lines; none when each one is explained."""
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT j.id, j.state, j.reason, d.error_class, d.last_error"
            "  FROM orchestrator.jobs j JOIN orchestrator.runs r ON r.id = j.run_id"
            "  LEFT JOIN orchestrator.dead_letter d ON d.job_id = j.id"
            " WHERE r.tenant = 'demo' AND r.name LIKE '%-pipeline'"
        ).fetchall()
    problems = [] if rows else ["the demo created no jobs"]
    counts: dict[str, int] = {}
    for job_id, state, reason, error_class, last_error in rows:
        counts[state] = counts.get(state, 0) + 1
        if state == "dead" and not (error_class and last_error):
            problems.append(f"job {job_id} dead-lettered without a reason")
        elif state == "canceled" and reason != "upstream_failed":
            problems.append(f"job {job_id} canceled with reason {reason!r}")
        elif state not in ("succeeded", "dead", "canceled"):
            problems.append(f"job {job_id} ended {state!r}")
    print(f"image-test: {len(rows)} demo jobs: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return problems


def main() -> int:
    image = (
        os.environ.get("ORCH_STACK_IMAGE")
        or subprocess.run(
            ["bash", str(ROOT / "scripts" / "image.sh"), "name"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    env = {k: v for k, v in os.environ.items() if k != "ORCH_AUTH_HS256_SECRET"}
    env.setdefault("CONTAINERS_CONF", str(ROOT / "deploy" / "image" / "containers.conf"))
    if subprocess.run(["podman", "image", "exists", image], env=env).returncode != 0:
        return _fail(f"no image {image}: run `make image` first")
    for name, port in PORTS.items():
        env.setdefault(name, str(port))
    drop_database(ADMIN_URL, DATABASE)
    database_url = create_database(ADMIN_URL, DATABASE)
    env.update(
        ORCH_STACK_IMAGE=image,
        ORCH_DATABASE_URL=database_url,
        ORCH_RATELIMIT_KEY_PREFIX="orch:image-test:",
        ORCH_STATE_DIR=str(ROOT / ".run" / "image-test"),
        COLUMNS=env.get("COLUMNS", "160"),
    )
    print(f"image-test: {image}, gateway http://127.0.0.1:{env['ORCH_GATEWAY_HTTP_PORT']}")
    demo = subprocess.run(
        [sys.executable, "-m", "demo", "--exit"], cwd=ROOT, env=env, timeout=DEMO_TIMEOUT_S
    )
    problems = _check_jobs(database_url)
    if demo.returncode != 0:
        problems.append(f"the demo exited {demo.returncode} (logs: {env['ORCH_STATE_DIR']}/logs)")
    left = _leftover_containers(env)
    if left:
        problems.append(f"containers left behind: {', '.join(left)}")
    if problems:
        return _fail("; ".join(problems))
    print(
        "image-test: OK: every demo job succeeded, dead-lettered with its reason, or was "
        "canceled because its upstream died; all containers stopped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
