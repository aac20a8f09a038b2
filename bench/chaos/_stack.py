"""The services and workers of a chaos run, as child processes this runner owns.

Ports, the gateway's upstream targets and health checks come from ``scripts/stack.py`` (the
same plan as ``make up REPLICAS=N``: replica r on base + 10·r), loaded from its file as
tests/unit/test_stack_plan.py does. The processes are started here rather than by
``stack.py up`` because the runner kills, stops and restarts single replicas and must reap
and see the exit status of each (a SIGTERMed replica drains and exits 0).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from bench.ports import free_block
from bench.sdk_workers import GO_WORKER, build_go_worker, tool

ROOT = Path(__file__).resolve().parents[2]
# Bounds only: ten processes starting at once on a loaded 2-core machine are slow.
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 120.0
WORKER_STOP_TIMEOUT_S = 120.0


def _load_stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("orch_stack", ROOT / "scripts" / "stack.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("orch_stack", module)
    spec.loader.exec_module(module)
    return module


stack = _load_stack()


def terminate_all(
    procs: dict[str, subprocess.Popen[bytes]], timeout_s: float
) -> dict[str, int | None]:
    """SIGTERM to every live process (they drain in parallel), then waits for each; one that
    does not exit in ``timeout_s`` is killed (its code None). Returns the exit codes."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    codes: dict[str, int | None] = {}
    for name, proc in procs.items():
        try:
            codes[name] = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            codes[name] = None
    return codes


class Stack:
    """N replicas of every service (scheduler, leases, ratelimit, audit, gateway).

    Args:
        run_dir: logs go to ``run_dir/logs/<service>-<r>.log`` (appended across restarts).
        replicas: processes per service.
        env: the ``ORCH_*`` settings every replica gets (database, Redis, secret, tunables).
    """

    def __init__(self, run_dir: Path, replicas: int, env: dict[str, str]) -> None:
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        envs = [p.env for spec in stack.SERVICES for p in spec.ports]
        base = free_block(len(envs) * 10 * replicas)
        ports = {name: str(base + i) for i, name in enumerate(envs)}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
        self.env |= ports | env | {"PYTHONUNBUFFERED": "1"}
        self.replicas = stack.plan(replicas, self.env)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def replica(self, name: str) -> Any:
        return next(r for r in self.replicas if r.name == name)

    def names(self, service: str) -> list[str]:
        return [r.name for r in self.replicas if r.spec.name == service]

    def target(self, service: str) -> str:
        """The multi-address target of every replica of ``service``."""
        return str(stack.targets(self.replicas, service))

    def metrics_port(self, name: str) -> int:
        replica = self.replica(name)
        return int(replica.ports[replica.spec.ports[0 if replica.spec.http else 1].env])

    def set_env(self, **values: str) -> None:
        """Settings for replicas started from now on (e.g. a new database URL)."""
        self.env |= values

    def start(self, name: str) -> None:
        replica = self.replica(name)
        old = os.environ.copy()
        try:
            # _child_env adds the replica's ports and the gateway's upstream targets to
            # os.environ; the run's settings are that environment.
            os.environ.clear()
            os.environ.update(self.env)
            env = stack._child_env(replica, self.replicas)
        finally:
            os.environ.clear()
            os.environ.update(old)
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", replica.spec.module],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def health(self, name: str) -> str:
        return str(stack._health(self.replica(name)))

    def wait_serving(self, names: list[str], timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        for name in names:
            delay = 0.05
            while self.health(name) != "SERVING":
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}: {self.tail(name)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{name} not SERVING in {timeout_s:.0f} s: {self.tail(name)}"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def start_all(self) -> None:
        for replica in self.replicas:
            self.start(replica.name)
        self.wait_serving([r.name for r in self.replicas])

    def signal(self, name: str, sig: signal.Signals) -> None:
        self.procs[name].send_signal(sig)

    def wait_exit(self, name: str, timeout_s: float = STOP_TIMEOUT_S) -> int:
        return self.procs[name].wait(timeout=timeout_s)

    def tail(self, name: str, size: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    def led_loops(self, name: str) -> list[str]:
        """The loops whose ``orch_leader{loop}`` gauge is 1 on replica ``name``."""
        try:
            text = scrape(self.metrics_port(name))
        except OSError:
            return []
        prefix = 'orch_leader{loop="'
        return [
            line[len(prefix) :].split('"', 1)[0]
            for line in text.splitlines()
            if line.startswith(prefix) and line.endswith(" 1.0")
        ]

    def leader(self, service: str, loop: str) -> str | None:
        """The replica of ``service`` that leads ``loop``, if any."""
        return next((n for n in self.names(service) if loop in self.led_loops(n)), None)

    def stop_all(self) -> dict[str, int | None]:
        """SIGTERM to every live replica (they drain in parallel), then wait; a replica that
        does not exit in time is killed. Returns each one's exit code."""
        return terminate_all(self.procs, STOP_TIMEOUT_S)


def scrape(port: int, timeout_s: float = 5.0) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as reply:
        return str(reply.read().decode())


class Workers:
    """Python (tests/e2e/_worker_proc.py: 20-60 ms handlers) and Go (the SDK's example
    worker, 40 ms) worker processes on one multi-address target."""

    def __init__(self, run_dir: Path, target: str, token: str, job_types: list[str]) -> None:
        self.run_dir = run_dir
        self.target = target
        self.token = token
        self.job_types = job_types
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start_python(self, count: int, concurrency: int) -> None:
        from tests.e2e._worker_proc import spawn

        for i in range(count):
            worker_id = f"chaos-py-{i}"
            log = (self.run_dir / "logs" / f"{worker_id}.log").open("ab")
            self._logs.append(log)
            self.procs[worker_id] = spawn(
                self.target, self.token, worker_id, concurrency, self.job_types, log
            )

    def start_go(self, count: int, concurrency: int) -> None:
        if count:
            build_go_worker()  # incremental: seconds when the caches are warm
        for i in range(count):
            worker_id = f"chaos-go-{i}"
            log = (self.run_dir / "logs" / f"{worker_id}.log").open("ab")
            self._logs.append(log)
            argv = [str(GO_WORKER), "-target", self.target, "-token", self.token]
            argv += ["-worker-id", worker_id, "-concurrency", str(concurrency)]
            argv += ["-types", ",".join(self.job_types), "-delay", "40ms"]
            self.procs[worker_id] = subprocess.Popen(
                argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def exited(self) -> dict[str, int]:
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def stop(self) -> dict[str, int | None]:
        """SIGTERM (drain) to every worker, then wait; returns each one's exit code."""
        codes = terminate_all(self.procs, WORKER_STOP_TIMEOUT_S)
        for log in self._logs:
            log.close()
        return codes


def go_toolchain() -> str | None:
    """The ``go`` binary (PATH, or the official tarball's /usr/local/go), or None."""
    return tool("go")
