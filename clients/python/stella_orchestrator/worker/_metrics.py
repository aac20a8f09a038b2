"""Worker-side Prometheus metrics, off by default.

``Worker(metrics_port=9464)`` or ``STELLA_METRICS_PORT=9464`` serves them on
``http://ADDR:PORT/metrics`` while :meth:`Worker.run` runs (``STELLA_METRICS_ADDR``, default
``0.0.0.0``; port 0 picks a free one). Without either the SDK never imports
``prometheus_client`` and every hook below is a no-op, so the package keeps its promise of
generated code, grpcio and the standard library only.

The Go and Rust SDKs export the same names, labels and buckets (docs/metrics.md, "Worker
SDKs"); ``sdk`` tells the languages apart, ``job_type`` is the handler's type (the handlers
a worker registers bound it), ``error_class`` the failure class (about 15).

The metrics live in a registry of their own, shared by every worker of the process (two
workers on one port count together), never in the application's default registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator
from typing import Any, Final

LOGGER = logging.getLogger("stella_orchestrator.worker")

PORT_ENV: Final = "STELLA_METRICS_PORT"
ADDR_ENV: Final = "STELLA_METRICS_ADDR"
DEFAULT_ADDR: Final = "0.0.0.0"
SDK: Final = "python"
# Handler durations from 5 ms to 10 min: ingestion handlers fetch, parse and write.
DURATION_BUCKETS_S: Final = (0.005, 0.025, 0.1, 0.25, 1, 2.5, 10, 30, 60, 300, 600)

_lock = threading.Lock()
_families: dict[str, Any] = {}
_servers: dict[tuple[str, int], tuple[Any, int]] = {}  # (addr, port) -> (server, users)


def metrics_port_from_env() -> int | None:
    """``STELLA_METRICS_PORT`` as a port, None when unset or empty.

    Raises:
        ValueError: not a port number.
    """
    raw = os.environ.get(PORT_ENV, "").strip()
    if not raw:
        return None
    port = int(raw)
    if not 0 <= port <= 65535:
        raise ValueError(f"{PORT_ENV}={raw!r} is not a port")
    return port


def _registry_families() -> dict[str, Any]:
    """The metric families, made once per process on first use."""
    with _lock:
        if not _families:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

            registry = CollectorRegistry(auto_describe=True)
            common = ("sdk", "job_type")
            _families.update(
                registry=registry,
                started=Counter(
                    "stella_worker_jobs_started",
                    "Jobs whose handler started.",
                    common,
                    registry=registry,
                ),
                succeeded=Counter(
                    "stella_worker_jobs_succeeded",
                    "Jobs whose result was reported.",
                    common,
                    registry=registry,
                ),
                failed=Counter(
                    "stella_worker_jobs_failed",
                    "Jobs whose failure was reported, by error class.",
                    (*common, "error_class"),
                    registry=registry,
                ),
                canceled=Counter(
                    "stella_worker_jobs_canceled",
                    "Handlers the SDK canceled (lease lost, job canceled, drain timeout).",
                    common,
                    registry=registry,
                ),
                duration=Histogram(
                    "stella_worker_handler_duration_seconds",
                    "Handler run time, whatever its outcome.",
                    common,
                    buckets=DURATION_BUCKETS_S,
                    registry=registry,
                ),
                in_flight=Gauge(
                    "stella_worker_jobs_in_flight",
                    "Handlers running now.",
                    common,
                    registry=registry,
                ),
            )
        return _families


class WorkerMetrics:
    """The hooks the session calls; no-ops unless ``port`` is set.

    Args:
        port: HTTP port of the metrics endpoint (0: a free one); None turns metrics off.
        addr: address to bind.
    """

    def __init__(self, port: int | None, addr: str = DEFAULT_ADDR) -> None:
        self.port = port
        self.addr = addr
        self.enabled = port is not None
        self._f = _registry_families() if self.enabled else {}
        self.bound_port: int | None = None
        """The port actually served while :meth:`serving` (useful with port 0)."""

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Serve ``/metrics`` for the duration (a no-op when off); workers of one process
        on one port share the server."""
        if not self.enabled:
            yield
            return
        assert self.port is not None
        key = (self.addr, self.port)
        with _lock:
            server, users = _servers.get(key, (None, 0))
            if server is None:
                from prometheus_client import start_http_server

                server, _thread = start_http_server(
                    self.port, addr=self.addr, registry=self._f["registry"]
                )
                LOGGER.info("worker metrics on http://%s:%d/metrics", self.addr, server.server_port)
            _servers[key] = (server, users + 1)
        self.bound_port = int(server.server_port)
        try:
            yield
        finally:
            with _lock:
                server, users = _servers.pop(key)
                last = users == 1
                if not last:
                    _servers[key] = (server, users - 1)
            if last:
                # shutdown() waits for serve_forever's 0.5 s poll: not on the event loop.
                await asyncio.to_thread(server.shutdown)
                server.server_close()
            self.bound_port = None

    def started(self, job_type: str) -> None:
        if self.enabled:
            self._f["started"].labels(SDK, job_type).inc()
            self._f["in_flight"].labels(SDK, job_type).inc()

    def finished(self, job_type: str, seconds: float) -> None:
        """The handler's task ended (any outcome)."""
        if self.enabled:
            self._f["in_flight"].labels(SDK, job_type).dec()
            self._f["duration"].labels(SDK, job_type).observe(seconds)

    def succeeded(self, job_type: str) -> None:
        if self.enabled:
            self._f["succeeded"].labels(SDK, job_type).inc()

    def failed(self, job_type: str, error_class: str) -> None:
        if self.enabled:
            self._f["failed"].labels(SDK, job_type, error_class).inc()

    def canceled(self, job_type: str) -> None:
        if self.enabled:
            self._f["canceled"].labels(SDK, job_type).inc()
