"""`scripts/stack.py` as a test fixture: the whole stack as real processes on ports and a
database of the test's own (the session's in-process services never share its ledger).

``stack_env()`` yields the environment for ``stack.py`` (free ports, the database, the dev
secret, Redis key prefixes of its own) and brings the stack down at exit; ``stack(env,
*args)`` runs one ``stack.py`` command and returns its output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bench.ports import free_block
from tests.conftest import DEV_SECRET

ROOT = Path(__file__).resolve().parents[1]
STACK = [sys.executable, str(ROOT / "scripts" / "stack.py")]
STRIDE = 10  # scripts/stack.py REPLICA_PORT_STRIDE
# The ten base ports, in the order they take in a free block (replica 1 adds STRIDE).
PORT_ENVS = (
    "ORCH_SCHEDULER_GRPC_PORT",
    "ORCH_LEASES_GRPC_PORT",
    "ORCH_RATELIMIT_GRPC_PORT",
    "ORCH_AUDIT_GRPC_PORT",
    "ORCH_GATEWAY_HTTP_PORT",
    "ORCH_SCHEDULER_METRICS_PORT",
    "ORCH_LEASES_METRICS_PORT",
    "ORCH_RATELIMIT_METRICS_PORT",
    "ORCH_AUDIT_METRICS_PORT",
    "ORCH_RATELIMIT_ENVOY_GRPC_PORT",
)
STEP_TIMEOUT_S = 240


@contextmanager
def stack_env(
    database_url: str, state_dir: Path, *, replicas: int = 1, extra: Mapping[str, str] = {}
) -> Iterator[dict[str, str]]:
    """The environment of a stack of ``replicas`` processes per service on free ports;
    ``stack.py down`` at exit (and a check that it left no pid file)."""
    base = free_block(STRIDE * replicas)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env |= {name: str(base + i) for i, name in enumerate(PORT_ENVS)}
    env |= {
        "ORCH_DATABASE_URL": database_url,
        "ORCH_STATE_DIR": str(state_dir),
        "ORCH_AUTH_HS256_SECRET": DEV_SECRET,
        "ORCH_RATELIMIT_KEY_PREFIX": f"orch:stack-test:{uuid.uuid4().hex[:8]}:",
        "ORCH_GATEWAY_RATELIMIT_KEY_PREFIX": f"orch:stack-gw-test:{uuid.uuid4().hex[:8]}:",
        **extra,
    }
    try:
        yield env
    finally:
        down = subprocess.run(
            [*STACK, "down"], env=env, capture_output=True, text=True, timeout=120
        )
        assert down.returncode == 0, down.stdout + down.stderr
        assert not list(state_dir.glob("*.pid")), "down left pid files"


def stack(env: Mapping[str, str], *args: str) -> str:
    """Run ``scripts/stack.py ARGS`` in ``env``; its stdout (fails the test on an error)."""
    done = subprocess.run(
        [*STACK, *args], env=dict(env), capture_output=True, text=True, timeout=STEP_TIMEOUT_S
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def port(env: Mapping[str, str], name: str, replica: int = 0) -> int:
    """The port ``name`` (an ``ORCH_*_PORT`` variable) of ``replica``."""
    return int(env[name]) + STRIDE * replica
