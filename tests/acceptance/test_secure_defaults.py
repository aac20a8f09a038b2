"""Secure by default, as operators meet it: a real service process bound to 0.0.0.0 with the
built-in development token secret (or audit signing key) exits non-zero at once with a
message naming the variable to set; with ``ORCH_INSECURE_DEV=1`` the same process serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.ports import free_port
from orchestrator_grpckit import CONFIG_ERROR_EXIT_STATUS

pytestmark = pytest.mark.integration
SECRET = "acceptance-secret-0123456789abcdef"
START_DEADLINE_S = 120  # a loaded CI machine starts (and fails) processes slowly
SERVICES = ("scheduler", "leases", "ratelimit", "audit", "gateway")


def _env(service: str, database_url: str, **extra: str) -> dict[str, str]:
    # Every key of the checkout's environment that could supply a real key is dropped, so
    # the service falls back to its built-in development material unless `extra` sets one.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ORCH_AUTH_HS256_SECRET", "ORCH_AUDIT_SIGNING_KEY_FILE", "ORCH_INSECURE_DEV")
    }
    prefix = f"ORCH_{service.upper()}_"
    env.update(
        ORCH_BIND_HOST="0.0.0.0",
        ORCH_DATABASE_URL=database_url,
        ORCH_SHUTDOWN_GRACE_S="1",
        **{
            prefix + ("HTTP_PORT" if service == "gateway" else "GRPC_PORT"): str(free_port()),
            prefix + "METRICS_PORT": str(free_port()),
            "ORCH_RATELIMIT_ENVOY_GRPC_PORT": str(free_port()),
        },
    )
    env.update(extra)
    return env


def _run_refused(service: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", f"orchestrator_{service}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=START_DEADLINE_S,
    )
    assert proc.returncode == CONFIG_ERROR_EXIT_STATUS, proc.stdout + proc.stderr
    # One plain line, no traceback: the operator reads what to set.
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_dev_secret_on_every_interface_is_refused(service: str, database_url: str) -> None:
    signing_key = {"ORCH_AUDIT_SIGNING_KEY_FILE": ""} if service == "audit" else {}
    err = _run_refused(service, _env(service, database_url, **signing_key))
    assert f"{service}: configuration error: {service} refuses to start" in err
    assert "ORCH_BIND_HOST=0.0.0.0 is not loopback" in err
    assert "Set ORCH_AUTH_HS256_SECRET" in err or "Set ORCH_AUDIT_SIGNING_KEY_FILE and" in err
    assert "ORCH_INSECURE_DEV=1" in err


def test_audit_dev_signing_key_on_every_interface_is_refused(database_url: str) -> None:
    # A real token secret is not enough: the bundle signing key is public too.
    err = _run_refused("audit", _env("audit", database_url, ORCH_AUTH_HS256_SECRET=SECRET))
    assert "Set ORCH_AUDIT_SIGNING_KEY_FILE " in err
    assert "ORCH_AUTH_HS256_SECRET" not in err


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)


def _wait_for(proc: subprocess.Popen[str], ready) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    pause = 0.05
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
            out = proc.communicate(timeout=10)[0]
            pytest.fail(f"{proc.args} did not start (exit {proc.returncode}):\n{out}")
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def test_insecure_dev_switch_lets_them_start(database_url: str, started) -> None:
    audit_env = _env("audit", database_url, ORCH_INSECURE_DEV="1", ORCH_AUDIT_SIGNING_KEY_FILE="")
    gateway_env = _env("gateway", database_url, ORCH_INSECURE_DEV="1")
    for service, env in (("audit", audit_env), ("gateway", gateway_env)):
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", f"orchestrator_{service}"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    audit, gateway = started

    def audit_serving() -> bool:
        target = f"127.0.0.1:{audit_env['ORCH_AUDIT_GRPC_PORT']}"
        with grpc.insecure_channel(target) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def gateway_serving() -> bool:
        url = f"http://127.0.0.1:{gateway_env['ORCH_GATEWAY_HTTP_PORT']}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    _wait_for(audit, audit_serving)
    _wait_for(gateway, gateway_serving)
    for proc in started:
        proc.terminate()
        out = proc.communicate(timeout=60)[0]
        # uvicorn re-raises the SIGTERM it handled once it has shut down.
        assert proc.returncode in (0, -signal.SIGTERM), out
        # Still loud about it: the development material is named in the log.
        assert "development" in out.lower(), out
