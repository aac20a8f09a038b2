"""Issue 20's acceptance: a clean virtualenv with only the SDK distribution
(``pip install clients/python``; its dependencies come from PyPI) holds no server
dependency, and runs the producer example and the worker example against a stack started
with ``scripts/stack.py`` on ports and a database of this test's own."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._stack import port, stack, stack_env
from tests.conftest import migrated_database

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "clients" / "python" / "examples"
INSTALL_TIMEOUT_S = 600
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
RUN_TIMEOUT_S = 300
SERVER_ONLY = (
    "psycopg",
    "psycopg_pool",
    "redis",
    "fastapi",
    "uvicorn",
    "croniter",
    "orchestrator_core",
    "orchestrator_pg",
    "orchestrator_gateway",
)


@pytest.fixture(scope="module")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a fresh venv holding the SDK distribution and what it pulls."""
    base = tmp_path_factory.mktemp("sdk")
    # pip builds a local project in place (build/, *.egg-info): build a copy of the two
    # directories the distribution is made of, in their layout, not the checkout itself.
    for part in ("clients/python", "gen/python"):
        shutil.copytree(ROOT / part, base / "src" / part, ignore=COPY_IGNORE)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            str(base / "src" / "clients" / "python"),
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        cwd=venv,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv / "bin" / "python"


def _clean_env() -> dict[str, str]:
    # Nothing of this checkout may leak in: no PYTHONPATH, no ORCH_* settings.
    return {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and not k.startswith(("ORCH_", "VIRTUAL_ENV"))
    }


@pytest.fixture
def stack_up(admin_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    with (
        migrated_database(admin_url, "sdkvenv", ("acme",)) as url,
        stack_env(url, tmp_path / "run") as env,
    ):
        stack(env, "up")
        yield env


def test_the_sdk_installs_without_any_server_dependency(sdk_python: Path) -> None:
    probe = (
        "import importlib.util, json, sys;"
        f"print(json.dumps([m for m in {SERVER_ONLY!r} if importlib.util.find_spec(m)]))"
    )
    found = subprocess.run(
        [str(sdk_python), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=sdk_python.parent,
        env=_clean_env(),
        timeout=60,
    )
    assert found.stdout.strip() == "[]"
    imports = subprocess.run(
        [
            str(sdk_python),
            "-c",
            "import stella_orchestrator.producer, stella_orchestrator.worker,"
            " stella_orchestrator.webhooks, stella.orchestrator.v1.scheduler_pb2_grpc",
        ],
        capture_output=True,
        text=True,
        cwd=sdk_python.parent,
        env=_clean_env(),
        timeout=60,
    )
    assert imports.returncode == 0, imports.stderr


def test_the_producer_and_worker_examples_run_from_the_sdk_venv(
    sdk_python: Path, stack_up: dict[str, str], make_token, tmp_path: Path
) -> None:
    env = _clean_env()
    leases = f"127.0.0.1:{port(stack_up, 'ORCH_LEASES_GRPC_PORT')}"
    scheduler = f"127.0.0.1:{port(stack_up, 'ORCH_SCHEDULER_GRPC_PORT')}"
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [
                str(sdk_python),
                str(EXAMPLES / "ingest_worker.py"),
                "--target",
                leases,
                "--token",
                make_token("acme", ("orch:work",), subject="sdk-venv-worker"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
        try:
            produced = subprocess.run(
                [
                    str(sdk_python),
                    str(EXAMPLES / "submit_work.py"),
                    "--target",
                    scheduler,
                    "--token",
                    make_token("acme", ("orch:read", "orch:operate")),
                    "--timeout",
                    "240",
                ],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
                timeout=RUN_TIMEOUT_S,
            )
        finally:
            worker.send_signal(signal.SIGTERM)
            worker_rc = worker.wait(timeout=120)
    worker_log = (tmp_path / "worker.log").read_text(errors="replace")
    assert produced.returncode == 0, produced.stdout + produced.stderr + worker_log
    assert "repeat returned existing=True" in produced.stdout
    assert "RUN_STATE_SUCCEEDED" in produced.stdout
    assert produced.stdout.count(" job.succeeded ") == 3  # the run's three jobs, watched
    assert worker_rc == 0, worker_log
