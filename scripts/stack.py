"""Starts and stops the orchestrator's services in the background (make up / make down).

``up`` provisions PostgreSQL and Redis (scripts/services.sh, unless ORCH_DATABASE_URL /
ORCH_REDIS_URL point elsewhere), applies migrations, registers the demo tenant, starts every
service as a background process (logs and pid files under .run/) and returns once each one
answers ``grpc.health.v1`` SERVING. ``down`` sends SIGTERM and waits for a clean exit.
``status`` prints a table. The gateway (REST, SSE, Console on ``ORCH_GATEWAY_HTTP_PORT``,
default 8080) is checked with ``GET /healthz`` instead of gRPC health.

With ``ORCH_STACK_IMAGE`` set (``make image-test``), migrations, the tenant and every service
run from that container image instead of this checkout: one podman container per service, on
the host's network (PostgreSQL and Redis stay on the host's loopback), read-only root, /tmp
on tmpfs, no capabilities, as the image's non-root user. The pid files then hold the
``podman run`` client, which passes SIGTERM on to the service and removes the container when
it exits; logs land in the same place.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_PORT_ENV = "ORCH_GATEWAY_HTTP_PORT"
GATEWAY_DEFAULT_PORT = 8080
RUN_DIR = Path(os.environ.get("ORCH_STATE_DIR", ROOT / ".run"))
PYTHON = sys.executable
# A container adds podman's start-up to the service's on a loaded 2-core machine.
IMAGE = os.environ.get("ORCH_STACK_IMAGE", "")
STARTUP_TIMEOUT_S = 90.0 if IMAGE else 30.0
# The grace period (ORCH_SHUTDOWN_GRACE_S, 10 s) plus, for a container, podman's teardown.
STOP_TIMEOUT_S = 30.0 if IMAGE else 15.0
DEMO_TENANT = "demo"


@dataclass(frozen=True)
class ServiceSpec:
    """One deployable: its module and default gRPC port (docs/architecture.md §1)."""

    name: str
    module: str
    port_env: str
    default_port: int
    http: bool = False

    @property
    def port(self) -> int:
        return int(os.environ.get(self.port_env, self.default_port))


# The services. The gateway starts last (it only needs the others to answer by the time a
# request comes) and is checked over HTTP.
SERVICES = (
    ServiceSpec("scheduler", "orchestrator_scheduler", "ORCH_SCHEDULER_GRPC_PORT", 50051),
    ServiceSpec("leases", "orchestrator_leases", "ORCH_LEASES_GRPC_PORT", 50052),
    ServiceSpec("ratelimit", "orchestrator_ratelimit", "ORCH_RATELIMIT_GRPC_PORT", 50053),
    ServiceSpec("audit", "orchestrator_audit", "ORCH_AUDIT_GRPC_PORT", 50054),
    ServiceSpec(
        "gateway", "orchestrator_gateway", GATEWAY_PORT_ENV, GATEWAY_DEFAULT_PORT, http=True
    ),
)


def _pid_file(spec: ServiceSpec) -> Path:
    return RUN_DIR / f"{spec.name}.pid"


def _running_pid(spec: ServiceSpec) -> int | None:
    try:
        pid = int(_pid_file(spec).read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid


def _http_health(port: int, timeout_s: float = 1.0) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout_s) as r:
            return "SERVING" if r.status == 200 else f"DOWN (HTTP {r.status})"
    except OSError as exc:
        return f"DOWN ({type(exc).__name__})"


def _spec_health(spec: ServiceSpec) -> str:
    return _http_health(spec.port) if spec.http else _health(spec.port)


def _health(port: int, timeout_s: float = 1.0) -> str:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.RpcError as exc:
        return f"DOWN ({exc.code().name})"


def _container_name(spec: ServiceSpec) -> str:
    # The port in the name lets two stacks on different ports share one podman store.
    return f"stella-{spec.name}-{spec.port}"


def _in_image(argv: list[str], name: str | None = None) -> list[str]:
    """``argv`` run in IMAGE the way the Kubernetes manifests run it: read-only root, a tmpfs
    /tmp as the only writable path, no capabilities, no privilege gain, the image's user."""
    env = sorted(k for k in os.environ if k.startswith(("ORCH_", "OTEL_")))
    return [
        "podman",
        "run",
        "--rm",
        *(["--name", name] if name else []),
        "--network=host",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs=/tmp:rw,size=64m,mode=1777",
        "--cap-drop=all",
        "--security-opt=no-new-privileges",
        # --env NAME (no value) passes the host's value through without printing it.
        *[f"--env={k}" for k in env],
        IMAGE,
        *argv,
    ]


def _stella(*args: str) -> list[str]:
    if IMAGE:
        return _in_image(["stella", *args])
    return [PYTHON, "-m", "stella_orchestrator", *args]


def _service_command(spec: ServiceSpec) -> list[str]:
    if IMAGE:
        return _in_image(["python", "-m", spec.module], name=_container_name(spec))
    return [PYTHON, "-m", spec.module]


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, cwd=ROOT, check=False)
    if result.returncode != 0:
        sys.exit(f"stack: `{' '.join(cmd)}` failed with exit code {result.returncode}")


def up() -> int:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_DIR / "logs").mkdir(exist_ok=True)
    _run(["bash", str(ROOT / "scripts" / "services.sh"), "start"])
    _run(_stella("orchestrator", "migrate"))
    _run(_stella("orchestrator", "tenants", "add", DEMO_TENANT, "--display-name", "Demo"))
    started = []
    for spec in SERVICES:
        if _running_pid(spec):
            print(f"{spec.name}: already running (pid {_running_pid(spec)})")
            continue
        if IMAGE:
            # A container left behind by a killed run would hold the name.
            subprocess.run(
                ["podman", "rm", "--force", "--ignore", _container_name(spec)],
                check=False,
                capture_output=True,
            )
        log = (RUN_DIR / "logs" / f"{spec.name}.log").open("ab")
        proc = subprocess.Popen(
            _service_command(spec),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _pid_file(spec).write_text(str(proc.pid))
        started.append((spec, proc))
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    for spec, proc in started:
        while True:
            status = _spec_health(spec)
            if status == "SERVING":
                where = f"container {_container_name(spec)}" if IMAGE else f"pid {proc.pid}"
                print(f"{spec.name}: SERVING on 127.0.0.1:{spec.port} ({where})")
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                log_tail = (RUN_DIR / "logs" / f"{spec.name}.log").read_text(errors="replace")
                print(log_tail[-3000:], file=sys.stderr)
                down()
                sys.exit(f"stack: {spec.name} did not become SERVING ({status}); log above")
            time.sleep(0.2)
    return 0


def down() -> int:
    for spec in SERVICES:
        pid = _running_pid(spec)
        if pid is None:
            _pid_file(spec).unlink(missing_ok=True)
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            print(f"{spec.name}: did not stop in {STOP_TIMEOUT_S:.0f}s; killing", file=sys.stderr)
            os.kill(pid, signal.SIGKILL)
            if IMAGE:
                # Killing the podman client leaves its container running.
                subprocess.run(["podman", "rm", "--force", _container_name(spec)], check=False)
        _pid_file(spec).unlink(missing_ok=True)
        print(f"{spec.name}: stopped")
    return 0


def status() -> int:
    print(f"{'SERVICE':<12} {'PID':>7}  {'ADDRESS':<16} HEALTH")
    for spec in SERVICES:
        pid = _running_pid(spec)
        print(f"{spec.name:<12} {pid or '-':>7}  127.0.0.1:{spec.port:<6} {_spec_health(spec)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    args = parser.parse_args()
    return {"up": up, "down": down, "status": status}[args.action]()


if __name__ == "__main__":
    sys.exit(main())
