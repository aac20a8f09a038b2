"""Peer burn-downs: graphile-worker and Procrastinate on the same PostgreSQL as our bench.

Each peer gets a fresh database, N no-op jobs enqueued in bulk, then a timed burn-down from the
moment its worker processes are told to start until no job is left. The count is polled every
100 ms, so up to 100 ms lands on the elapsed time: the local-queue run takes ~1 s for 20,000
jobs, so its figure can read up to ~10 % low. Figures, as
``name value unit`` (docs/architecture.md §8):

* ``peer_graphile_worker_jobs_per_s``              graphile-worker, default fetch/complete path
* ``peer_graphile_worker_local_queue_jobs_per_s``  same with ``localQueue.size`` 500 and
  ``completeJobBatchDelay`` = ``failJobBatchDelay`` = 0 (their "batching" configuration)
* ``peer_procrastinate_jobs_per_s``                Procrastinate async workers, at most
  ``PROCRASTINATE_MAX_JOBS`` jobs (it runs at a few hundred jobs/s)

Both peers run 4 worker processes, like our e2e bench. graphile-worker uses its own perf-test
settings (concurrentJobs 24, maxPoolSize 25 per process, website/docs/performance.md);
Procrastinate runs concurrency 10 per process with a pool of 12 connections.

The peers are installed on first use into ``$STELLA_BENCH_CACHE`` (default
``~/.cache/stella-orchestrator-bench``), never into the repo: ``graphile/`` gets
``npm install`` of the pinned ``bench/peers/graphile/package.json``, ``procrastinate-venv/``
a venv with ``PROCRASTINATE_REQUIREMENTS``. Later runs reuse them. A peer that cannot be
installed or run is reported as ``# peer <name> unavailable: <reason>`` on stderr and its
figure is left out.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator_pg import create_database, drop_database

__all__ = ["PROCRASTINATE_MAX_JOBS", "PROCRASTINATE_REQUIREMENTS", "cache_dir", "run_peers"]

HERE = Path(__file__).resolve().parent
GRAPHILE_SRC = HERE / "graphile"
PROCRASTINATE_SCRIPT = HERE / "procrastinate_burn.py"

# procrastinate 3.x has no "psycopg" extra (psycopg is a plain dependency); the binary wheel is
# pinned so that it does not run on the slower pure-Python libpq wrapper (ours uses the binary).
PROCRASTINATE_REQUIREMENTS = ("procrastinate==3.10.0", "psycopg[binary]==3.3.9")
PROCRASTINATE_MAX_JOBS = 5_000
WORKER_PROCESSES = 4
GRAPHILE_CONCURRENCY = 24
GRAPHILE_LOCAL_QUEUE_SIZE = 500
PROCRASTINATE_CONCURRENCY = 10
INSTALL_TIMEOUT_S = 300.0
_MARKER = ".stella-bench-installed"


class PeerUnavailable(Exception):
    """A peer could not be installed or run; the message is the reason."""


def cache_dir() -> Path:
    return Path(
        os.environ.get("STELLA_BENCH_CACHE") or Path.home() / ".cache" / "stella-orchestrator-bench"
    )


def _note(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def _run(cmd: list[str], *, timeout_s: float, env: dict[str, str] | None = None, cwd=None):
    """Runs ``cmd`` in its own process group; on timeout the whole group (the peer's worker
    processes too) is killed. Returns the completed process; raises PeerUnavailable."""
    if timeout_s <= 1:
        raise PeerUnavailable("out of time budget")
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise PeerUnavailable(f"cannot start {cmd[0]}: {exc}") from exc
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise PeerUnavailable(f"{Path(cmd[0]).name} timed out after {timeout_s:.0f} s") from exc
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _last_line(text: str) -> str:
    lines = [line.strip().lstrip("# ") for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        raise PeerUnavailable(f"{what} exited {proc.returncode}: {_last_line(proc.stderr)}")


# --- installation -----------------------------------------------------------------------------


def _marker_ok(path: Path, expected: str) -> bool:
    try:
        return (path / _MARKER).read_text() == expected
    except OSError:
        return False


def ensure_graphile(deadline: float) -> Path:
    """``<cache>/graphile`` with the pinned graphile-worker installed and burn.mjs copied in
    (node resolves ``graphile-worker`` next to the script, so it runs from the cache)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PeerUnavailable("node/npm not on PATH")
    target = cache_dir() / "graphile"
    manifest = (GRAPHILE_SRC / "package.json").read_text()
    if not _marker_ok(target, manifest):
        target.mkdir(parents=True, exist_ok=True)
        (target / "package.json").write_text(manifest)
        timeout = min(INSTALL_TIMEOUT_S, deadline - time.monotonic())
        proc = _run(
            [npm, "install", "--prefix", str(target), "--no-audit", "--no-fund", "--omit=dev"],
            timeout_s=timeout,
        )
        _check(proc, "npm install")
        pinned = json.loads(manifest)["dependencies"]["graphile-worker"]
        installed = target / "node_modules" / "graphile-worker" / "package.json"
        try:
            got = json.loads(installed.read_text())["version"]
        except (OSError, ValueError, KeyError) as exc:
            raise PeerUnavailable(f"graphile-worker missing after npm install: {exc}") from exc
        if got != pinned:
            raise PeerUnavailable(f"npm installed graphile-worker {got}, wanted {pinned}")
        (target / _MARKER).write_text(manifest)
    shutil.copyfile(GRAPHILE_SRC / "burn.mjs", target / "burn.mjs")
    return target


def ensure_procrastinate(deadline: float) -> Path:
    """The python of ``<cache>/procrastinate-venv`` with PROCRASTINATE_REQUIREMENTS."""
    venv = cache_dir() / "procrastinate-venv"
    python = venv / "bin" / "python"
    expected = "\n".join(PROCRASTINATE_REQUIREMENTS)
    if python.exists() and _marker_ok(venv, expected):
        return python
    if not python.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        proc = _run(
            [sys.executable, "-m", "venv", str(venv)],
            timeout_s=min(120.0, deadline - time.monotonic()),
        )
        _check(proc, "python -m venv")
    proc = _run(
        [
            str(python),
            *("-m", "pip", "install", "-q", "--disable-pip-version-check"),
            *PROCRASTINATE_REQUIREMENTS,
        ],
        timeout_s=min(INSTALL_TIMEOUT_S, deadline - time.monotonic()),
    )
    _check(proc, "pip install")
    (venv / _MARKER).write_text(expected)
    return python


# --- runs -------------------------------------------------------------------------------------


@dataclass
class _Peer:
    figure: str
    label: str
    jobs: int
    env: dict[str, str] = field(default_factory=dict)


def _parse_figure(stdout: str, name: str) -> float:
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == name:
            return float(parts[1])
    raise PeerUnavailable(f"no {name} line in output: {_last_line(stdout)}")


def _burn(admin_url: str, peer: _Peer, cmd: list[str], deadline: float, cwd=None) -> float:
    name = f"peer_{peer.label}_{uuid.uuid4().hex[:8]}"
    try:
        url = create_database(admin_url, name)
    except Exception as exc:
        raise PeerUnavailable(f"cannot create database: {_one_line(exc)}") from exc
    try:
        budget = deadline - time.monotonic()
        env = {
            **os.environ,
            **peer.env,
            "DATABASE_URL": url,
            "JOBS": str(peer.jobs),
            "PROCESSES": str(WORKER_PROCESSES),
            "FIGURE": peer.figure,
            # the runner gives up (and cleans up its workers) before we would kill it
            "TIMEOUT_S": str(max(1.0, budget - min(30.0, budget / 4))),
        }
        proc = _run(cmd, timeout_s=budget, env=env, cwd=cwd)
        for line in proc.stderr.splitlines():
            if line.strip():
                print(line if line.startswith("#") else f"# {line}", file=sys.stderr)
        _check(proc, Path(cmd[0]).name)
        return _parse_figure(proc.stdout, peer.figure)
    finally:
        try:
            drop_database(admin_url, name)
        except Exception as exc:
            _note(f"could not drop {name}: {_one_line(exc)}")


def run_peers(admin_url: str, jobs: int = 20000, *, timeout_s: float = 600) -> dict[str, float]:
    """Installs (first time) and runs the peer burn-downs; returns ``{figure: jobs/s}`` for
    each peer that ran. Never raises for a peer failure: it is noted on stderr instead."""
    deadline = time.monotonic() + timeout_s
    figures: dict[str, float] = {}

    graphile_peers = [
        _Peer(
            "peer_graphile_worker_jobs_per_s",
            "graphile",
            jobs,
            {"CONCURRENCY": str(GRAPHILE_CONCURRENCY), "LOCAL_QUEUE": "0"},
        ),
        _Peer(
            "peer_graphile_worker_local_queue_jobs_per_s",
            "graphile_lq",
            jobs,
            {
                "CONCURRENCY": str(GRAPHILE_CONCURRENCY),
                "LOCAL_QUEUE": "1",
                "LOCAL_QUEUE_SIZE": str(GRAPHILE_LOCAL_QUEUE_SIZE),
            },
        ),
    ]
    try:
        graphile_dir: Path | None = ensure_graphile(deadline)
    except PeerUnavailable as exc:
        graphile_dir = None
        _note(f"peer graphile-worker unavailable: {exc}")
    if graphile_dir is not None:
        node = shutil.which("node") or "node"
        for peer in graphile_peers:
            try:
                figures[peer.figure] = _burn(
                    admin_url, peer, [node, str(graphile_dir / "burn.mjs")], deadline, graphile_dir
                )
            except PeerUnavailable as exc:
                _note(f"peer {peer.figure} unavailable: {exc}")

    peer = _Peer(
        "peer_procrastinate_jobs_per_s",
        "procrastinate",
        min(jobs, PROCRASTINATE_MAX_JOBS),
        {"CONCURRENCY": str(PROCRASTINATE_CONCURRENCY)},
    )
    if peer.jobs < jobs:
        _note(f"{peer.figure} burns {peer.jobs} jobs, not {jobs} (it runs at a few hundred/s)")
    try:
        python = ensure_procrastinate(deadline)
        figures[peer.figure] = _burn(
            admin_url, peer, [str(python), str(PROCRASTINATE_SCRIPT)], deadline
        )
    except PeerUnavailable as exc:
        _note(f"peer procrastinate unavailable: {exc}")
    return figures
