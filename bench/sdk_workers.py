"""Worker processes of the three SDKs for the benchmarks: how to build each SDK's example
worker and the command line that runs it with a no-op handler.

Python runs ``bench._noop_worker``; Go and Rust run their SDK's example worker
(``clients/go/examples/worker``, ``clients/rust/examples/worker.rs``) with ``-handler noop``.
Go and Rust are built into ``.cache`` (the caches the cross-language tests use) on first use:
Go in seconds when the cache is warm, Rust optimised (``--release``, minutes the first time).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
GO_WORKER = CACHE / "bin" / "stella-go-worker"
RUST_TARGET = CACHE / "cargo-target"
RUST_RELEASE_WORKER = RUST_TARGET / "release" / "examples" / "worker"
BUILD_TIMEOUT_S = 1800

# (target, token, worker id, concurrency, job type) -> argv
Argv = Callable[[str, str, str, int, str], list[str]]


def tool(name: str) -> str | None:
    """``go`` or ``cargo`` from PATH, the official Go tarball or rustup's directory."""
    for candidate in (
        shutil.which(name),
        shutil.which(f"/usr/local/go/bin/{name}"),
        str(Path.home() / ".cargo" / "bin" / name),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def build_env() -> dict[str, str]:
    """go and cargo with their caches inside the checkout."""
    return {
        **os.environ,
        "GOCACHE": str(CACHE / "go-build"),
        "CARGO_TARGET_DIR": str(RUST_TARGET),
        "GOFLAGS": "-buildvcs=false",
    }


def build_go_worker() -> Path:
    """The Go SDK's example worker into ``.cache/bin``."""
    go = tool("go")
    if go is None:
        raise RuntimeError("go is not installed: Go workers need it")
    subprocess.run(
        [go, "build", "-o", str(GO_WORKER), "./examples/worker"],
        cwd=ROOT / "clients" / "go",
        env=build_env(),
        check=True,
        timeout=BUILD_TIMEOUT_S,
    )
    return GO_WORKER


def build_rust_worker() -> Path:
    """The Rust SDK's example worker, optimised."""
    cargo = tool("cargo")
    if cargo is None:
        raise RuntimeError("cargo is not installed: Rust workers need it")
    subprocess.run(
        [cargo, "build", "-q", "--release", "--locked", "--example", "worker"],
        cwd=ROOT / "clients" / "rust",
        env=build_env(),
        check=True,
        timeout=BUILD_TIMEOUT_S,
    )
    return RUST_RELEASE_WORKER


def python_argv(module: str = "bench._noop_worker") -> Argv:
    """A Python SDK worker: ``python -m module TARGET TOKEN ID CONCURRENCY TYPE``."""

    def argv(target: str, token: str, worker_id: str, concurrency: int, job_type: str) -> list[str]:
        return [sys.executable, "-m", module, target, token, worker_id, str(concurrency), job_type]

    return argv


def example_argv(binary: Path) -> Argv:
    """A Go or Rust example worker (same flags) with the no-op handler."""

    def argv(target: str, token: str, worker_id: str, concurrency: int, job_type: str) -> list[str]:
        return [
            str(binary),
            "-target",
            target,
            "-token",
            token,
            "-worker-id",
            worker_id,
            "-concurrency",
            str(concurrency),
            "-types",
            job_type,
            "-handler",
            "noop",
        ]

    return argv


@dataclass(frozen=True)
class Sdk:
    """One SDK's worker for a burn-down: its name in figures and its command line."""

    name: str
    argv: Argv


def sdk_workers(names: list[str]) -> list[Sdk]:
    """The SDKs named (``python``, ``go``, ``rust``), built where needed."""
    out = []
    for name in names:
        if name == "python":
            out.append(Sdk(name, python_argv()))
        elif name == "go":
            out.append(Sdk(name, example_argv(build_go_worker())))
        elif name == "rust":
            out.append(Sdk(name, example_argv(build_rust_worker())))
        else:
            raise ValueError(f"unknown SDK {name!r}: python, go or rust")
    return out
