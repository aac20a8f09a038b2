"""Fixtures of the cross-language tests: the Go and Rust example workers built once per
session (caches under .cache/, see scripts/sdk.mk), and a launcher for worker processes of
each language. Missing go or cargo is a failure, not a skip: CI machines have both."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from bench.sdk_workers import CACHE, GO_WORKER, ROOT, RUST_TARGET, build_env, tool

GO_PRODUCER = CACHE / "bin" / "stella-go-producer"
RUST_WORKER = RUST_TARGET / "debug" / "examples" / "worker"
BUILD_TIMEOUT_S = 900


def _tool(name: str) -> str:
    path = tool(name)
    if path is None:
        pytest.fail(f"{name} is not installed; the cross-language tests need it (see .ci/run)")
    return path


def _go_build(example: str, output: Path) -> Path:
    subprocess.run(
        [_tool("go"), "build", "-o", str(output), f"./examples/{example}"],
        cwd=ROOT / "clients" / "go",
        env=build_env(),
        check=True,
        timeout=BUILD_TIMEOUT_S,
    )
    return output


@pytest.fixture(scope="session")
def go_worker_bin() -> Path:
    return _go_build("worker", GO_WORKER)


@pytest.fixture(scope="session")
def go_producer_bin() -> Path:
    return _go_build("producer", GO_PRODUCER)


@pytest.fixture(scope="session")
def rust_worker_bin() -> Path:
    subprocess.run(
        [_tool("cargo"), "build", "--locked", "--example", "worker"],
        cwd=ROOT / "clients" / "rust",
        env=build_env(),
        check=True,
        timeout=BUILD_TIMEOUT_S,
    )
    return RUST_WORKER


Launcher = Callable[..., subprocess.Popen[bytes]]


def stop_all(procs: Iterable[subprocess.Popen[bytes]], timeout_s: float) -> list[Any]:
    """SIGTERM every process still running (workers drain, then exit), wait up to
    ``timeout_s`` for each, and kill those that do not exit; returns the killed ones' args."""
    running = [proc for proc in procs if proc.poll() is None]
    for proc in running:
        proc.terminate()
    stuck = []
    for proc in running:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stuck.append(proc.args)
            proc.kill()
            proc.wait(timeout=10)
    return stuck


@pytest.fixture
def launch(
    leases_target: str, make_token, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Launcher]:
    """Start a worker process: ``launch(sdk, worker_id, job_types, delay_s=0.03)`` (each job
    takes ``delay_s``); every process still
    running at teardown is drained (SIGTERM), then killed."""
    token = make_token("acme", ("orch:work",), subject="crosslang-fleet")
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []

    def start(
        sdk: str, worker_id: str, job_types: list[str], delay_s: float = 0.03
    ) -> subprocess.Popen[bytes]:
        types = ",".join(job_types)
        if sdk == "python":
            cmd = [sys.executable, "-m", "tests.crosslang._python_worker"]
            cmd += [leases_target, token, worker_id, "8", types, str(delay_s)]
        else:
            # Built on first use, so a test needing one language builds only that one.
            binary = request.getfixturevalue(f"{sdk}_worker_bin")
            cmd = [str(binary), "-target", leases_target, "-token", token, "-worker-id", worker_id]
            cmd += ["-concurrency", "8", "-types", types, "-delay", f"{int(delay_s * 1000)}ms"]
        log = (tmp_path / f"{worker_id}.log").open("wb")
        logs.append(log)
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "RUST_LOG": "info"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    draining = [proc for proc in procs if proc.poll() is None]
    stuck = stop_all(draining, timeout_s=120)  # generous: a loaded CI machine drains slowly
    for log in logs:
        log.close()
    # A worker must drain and exit 0 on SIGTERM, also when it is idle.
    assert not stuck, f"workers ignored SIGTERM for 120 s: {stuck}"
    assert all(proc.returncode == 0 for proc in draining), [p.returncode for p in draining]
