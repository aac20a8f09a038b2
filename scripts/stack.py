"""Starts and stops the orchestrator's services in the background (make up / make down).

``up`` provisions PostgreSQL and Redis (scripts/services.sh, unless ORCH_DATABASE_URL /
ORCH_REDIS_URL point elsewhere), applies migrations, registers the demo tenant, starts every
service as background processes (logs and pid files under .run/) and returns once each one
answers ``grpc.health.v1`` SERVING. ``down`` sends SIGTERM and waits for a clean exit.
``status`` prints a table. The gateway (REST, SSE, Console on ``ORCH_GATEWAY_HTTP_PORT``,
default 8080) is checked with ``GET /healthz`` instead of gRPC health.

``up --replicas N`` (``make up REPLICAS=N``) starts N processes of every service against the
one PostgreSQL and Redis. Replica ``r`` (0-based) of a service listens on every port of the
service (gRPC or HTTP, metrics, the ratelimit Envoy listener) plus ``10 * r``: leases on
50052, 50062, 50072...; scheduler on 50051, 50061...; gateway on 8080, 8090... The base
ports are the usual ``ORCH_*_PORT`` variables, so with the defaults the services' ports
never meet (each keeps its last digit); ``up`` refuses bases that would collide. The gateway
replicas reach every scheduler, ratelimit and audit replica through one round-robin target
(``ORCH_<SERVICE>_TARGET``, a comma list), as workers reach the leases replicas.

With ``ORCH_STACK_IMAGE`` set (``make image-test``), migrations, the tenant and every service
run from that container image instead of this checkout: one podman container per process, on
the host's network (PostgreSQL and Redis stay on the host's loopback), read-only root, /tmp
on tmpfs, no capabilities, as the image's non-root user. The pid files then hold the
``podman run`` client, which passes SIGTERM on to the service and removes the container when
it exits; logs land in the same place.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator_grpckit import DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("ORCH_STATE_DIR", ROOT / ".run"))
STATE_FILE = RUN_DIR / "stack.json"
PYTHON = sys.executable
# A container adds podman's start-up to the service's on a loaded 2-core machine.
IMAGE = os.environ.get("ORCH_STACK_IMAGE", "")
# An upper bound only: ten processes (or containers) starting at once on a loaded 2-core
# machine are slow.
STARTUP_TIMEOUT_S = 90.0
# The grace period (ORCH_SHUTDOWN_GRACE_S, 10 s) plus, for a container, podman's teardown.
STOP_TIMEOUT_S = 30.0 if IMAGE else 15.0
DEMO_TENANT = "demo"
# Replica r listens on base + r * stride. 10 keeps each service's last digit with the
# default bases (50051..50054, 9102..9105, 8080/8081), so any number of replicas fits.
REPLICA_PORT_STRIDE = 10
MAX_REPLICAS = 50


@dataclass(frozen=True)
class PortSpec:
    """One port a service binds: the variable that sets it and its default."""

    env: str
    default: int

    def base(self, environ: Mapping[str, str]) -> int:
        return int(environ.get(self.env, "").strip() or self.default)


@dataclass(frozen=True)
class ServiceSpec:
    """One deployable: its module and the ports it binds (docs/architecture.md §1); the
    first port is the one it serves and is health-checked on."""

    name: str
    module: str
    ports: tuple[PortSpec, ...]
    http: bool = False


def _grpc_service(name: str, *extra: PortSpec) -> ServiceSpec:
    prefix = f"ORCH_{name.upper()}_"
    return ServiceSpec(
        name,
        f"orchestrator_{name}",
        (
            PortSpec(prefix + "GRPC_PORT", DEFAULT_GRPC_PORTS[name]),
            PortSpec(prefix + "METRICS_PORT", DEFAULT_METRICS_PORTS[name]),
            *extra,
        ),
    )


# The services. The gateway starts last (it only needs the others to answer by the time a
# request comes) and is checked over HTTP (its metrics are on the same port).
SERVICES = (
    _grpc_service("scheduler"),
    _grpc_service("leases"),
    _grpc_service("ratelimit", PortSpec("ORCH_RATELIMIT_ENVOY_GRPC_PORT", 8081)),
    _grpc_service("audit"),
    ServiceSpec(
        "gateway", "orchestrator_gateway", (PortSpec("ORCH_GATEWAY_HTTP_PORT", 8080),), http=True
    ),
)
# The gateway's upstreams: ORCH_<SERVICE>_TARGET unless the operator set it.
GATEWAY_UPSTREAMS = ("scheduler", "ratelimit", "audit")


@dataclass(frozen=True)
class Replica:
    """One process of one service: which replica it is and the ports it binds."""

    spec: ServiceSpec
    index: int
    ports: dict[str, int]

    @property
    def name(self) -> str:
        return f"{self.spec.name}-{self.index}"

    @property
    def port(self) -> int:
        return self.ports[self.spec.ports[0].env]

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return RUN_DIR / "logs" / f"{self.name}.log"

    @property
    def container(self) -> str:
        # The port in the name lets two stacks on different ports share one podman store.
        return f"stella-{self.spec.name}-{self.port}"


def plan(replicas: int, environ: Mapping[str, str] = os.environ) -> list[Replica]:
    """Every process of a stack of ``replicas`` replicas, in start order.

    Raises:
        SystemExit: The count is out of range, or two processes would share a port.
    """
    if not 1 <= replicas <= MAX_REPLICAS:
        sys.exit(f"stack: --replicas must be 1..{MAX_REPLICAS}, got {replicas}")
    out: list[Replica] = []
    owner: dict[int, str] = {}
    for spec in SERVICES:
        for index in range(replicas):
            ports = {p.env: p.base(environ) + REPLICA_PORT_STRIDE * index for p in spec.ports}
            replica = Replica(spec, index, ports)
            for env, port in ports.items():
                if not 0 < port <= 65535:
                    sys.exit(f"stack: {replica.name} would listen on {env}={port}")
                if port in owner:
                    sys.exit(
                        f"stack: {replica.name} ({env}) and {owner[port]} would both listen on"
                        f" {port}; replica r uses base + {REPLICA_PORT_STRIDE}·r, so choose"
                        " base ports whose ranges do not meet"
                    )
                owner[port] = f"{replica.name} ({env})"
            out.append(replica)
    return out


def targets(replicas: list[Replica], service: str) -> str:
    """The round-robin target of every replica of ``service``: ``127.0.0.1:P0,127.0.0.1:P1``."""
    return ",".join(f"127.0.0.1:{r.port}" for r in replicas if r.spec.name == service)


def _read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
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


def _grpc_health(port: int, timeout_s: float = 1.0) -> str:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.RpcError as exc:
        return f"DOWN ({exc.code().name})"


def _health(replica: Replica) -> str:
    return _http_health(replica.port) if replica.spec.http else _grpc_health(replica.port)


def _in_image(argv: list[str], env: Mapping[str, str], name: str | None = None) -> list[str]:
    """``argv`` run in IMAGE the way the Kubernetes manifests run it: read-only root, a tmpfs
    /tmp as the only writable path, no capabilities, no privilege gain, the image's user."""
    names = sorted(k for k in env if k.startswith(("ORCH_", "OTEL_")))
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
        # --env NAME (no value) passes the podman client's value through without printing
        # it; the client runs with the replica's environment (its ports, its targets).
        *[f"--env={k}" for k in names],
        IMAGE,
        *argv,
    ]


def _stella(*args: str) -> list[str]:
    if IMAGE:
        return _in_image(["stella", *args], os.environ)
    return [PYTHON, "-m", "stella_orchestrator", *args]


def _service_command(replica: Replica, env: Mapping[str, str]) -> list[str]:
    if IMAGE:
        return _in_image(["python", "-m", replica.spec.module], env, name=replica.container)
    return [PYTHON, "-m", replica.spec.module]


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, cwd=ROOT, check=False)
    if result.returncode != 0:
        sys.exit(f"stack: `{' '.join(cmd)}` failed with exit code {result.returncode}")


def _started() -> list[Replica] | None:
    """The processes ``up`` started (from its state file, so ``status`` and a later ``up``
    see the ports it used even without its environment), or None."""
    by_name = {spec.name: spec for spec in SERVICES}
    try:
        state = json.loads(STATE_FILE.read_text())
        return [
            Replica(by_name[p["service"]], int(p["replica"]), dict(p["ports"]))
            for p in state["processes"]
        ]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _running_replicas() -> int | None:
    started = _started()
    return None if started is None else 1 + max(r.index for r in started)


def _child_env(replica: Replica, stack: list[Replica]) -> dict[str, str]:
    env = {**os.environ, **{name: str(port) for name, port in replica.ports.items()}}
    if replica.spec.name == "gateway":
        for upstream in GATEWAY_UPSTREAMS:
            env.setdefault(f"ORCH_{upstream.upper()}_TARGET", targets(stack, upstream))
    return env


def up(replicas: int) -> int:
    running = _running_replicas()
    if running is not None and running != replicas and any(pid for _n, _f, pid in _pids()):
        sys.exit(
            f"stack: running with {running} replica(s); `make down` before starting {replicas}"
        )
    stack = plan(replicas)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_DIR / "logs").mkdir(exist_ok=True)
    _run(["bash", str(ROOT / "scripts" / "services.sh"), "start"])
    _run(_stella("orchestrator", "migrate"))
    _run(_stella("orchestrator", "tenants", "add", DEMO_TENANT, "--display-name", "Demo"))
    processes = [{"service": r.spec.name, "replica": r.index, "ports": r.ports} for r in stack]
    STATE_FILE.write_text(json.dumps({"replicas": replicas, "processes": processes}) + "\n")
    started = []
    for replica in stack:
        pid = _read_pid(replica.pid_file)
        if pid:
            print(f"{replica.name}: already running (pid {pid})")
            continue
        if IMAGE:
            # A container left behind by a killed run would hold the name.
            subprocess.run(
                ["podman", "rm", "--force", "--ignore", replica.container],
                check=False,
                capture_output=True,
            )
        env = _child_env(replica, stack)
        with replica.log_file.open("ab") as log:
            proc = subprocess.Popen(
                _service_command(replica, env),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        replica.pid_file.write_text(str(proc.pid))
        started.append((replica, proc))
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    for replica, proc in started:
        while True:
            status = _health(replica)
            if status == "SERVING":
                where = f"container {replica.container}" if IMAGE else f"pid {proc.pid}"
                print(f"{replica.name}: SERVING on 127.0.0.1:{replica.port} ({where})")
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                log_tail = replica.log_file.read_text(errors="replace")
                print(log_tail[-3000:], file=sys.stderr)
                down()
                sys.exit(f"stack: {replica.name} did not become SERVING ({status}); log above")
            time.sleep(0.2)
    return 0


def _pids() -> list[tuple[str, Path, int | None]]:
    # Every pid file, whatever replica count started it (and the one-process files of
    # earlier versions: `<service>.pid`), so `down` never leaves a process behind.
    return [(f.stem, f, _read_pid(f)) for f in sorted(RUN_DIR.glob("*.pid"))]


def down() -> int:
    # SIGTERM to all first, so the replicas drain in parallel, then wait for each.
    containers = {r.name: r.container for r in _started() or []}
    pending = []
    for name, pid_file, pid in _pids():
        if pid is None:
            pid_file.unlink(missing_ok=True)
            continue
        os.kill(pid, signal.SIGTERM)
        pending.append((name, pid_file, pid))
    for name, pid_file, pid in pending:
        # Each process gets the whole timeout (counted from when its turn comes): on a
        # loaded machine ten drain at once more slowly than one.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            print(f"{name}: did not stop in {STOP_TIMEOUT_S:.0f}s; killing", file=sys.stderr)
            os.kill(pid, signal.SIGKILL)
            if IMAGE and name in containers:
                # Killing the podman client leaves its container running.
                subprocess.run(["podman", "rm", "--force", containers[name]], check=False)
        pid_file.unlink(missing_ok=True)
        print(f"{name}: stopped")
    STATE_FILE.unlink(missing_ok=True)
    return 0


def status(replicas: int | None) -> int:
    started = _started()
    rows = started if replicas is None and started else plan(replicas or 1)
    print(f"{'SERVICE':<10} {'REPLICA':>7} {'PORT':>6} {'PID':>8}  HEALTH")
    for replica in rows:
        pid = _read_pid(replica.pid_file)
        print(
            f"{replica.spec.name:<10} {replica.index:>7} {replica.port:>6} {pid or '-':>8}"
            f"  {_health(replica)}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="processes per service (up: default 1; status: default what `up` started)",
    )
    args = parser.parse_args()
    if args.action == "up":
        return up(1 if args.replicas is None else args.replicas)
    if args.action == "down":
        return down()
    return status(args.replicas)


if __name__ == "__main__":
    sys.exit(main())
