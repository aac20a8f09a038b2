"""``Worker``: handler registry, the reconnect loop and the process entry point.

``run()`` opens a channel and runs one :class:`~stella_orchestrator.worker._session.Session`
(one Work stream) after another. A stream that fails is retried after a capped, fully
jittered exponential backoff (0.1 s doubling to 10 s), reset once a stream got its Welcome;
codes that retrying cannot fix (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT) end
``run()`` with :class:`RPCError` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final, TypeAlias

import grpc

from stella.orchestrator.v1 import leases_pb2_grpc
from stella_orchestrator import telemetry
from stella_orchestrator._connection import (
    DEFAULT_CHANNEL_OPTIONS,
    aio_channel,
    call_metadata,
    resolve_credentials,
)
from stella_orchestrator.errors import RPCError
from stella_orchestrator.worker._backoff import Backoff
from stella_orchestrator.worker._job import Job
from stella_orchestrator.worker._metrics import WorkerMetrics, metrics_port_from_env
from stella_orchestrator.worker._session import Session

LOGGER = logging.getLogger("stella_orchestrator.worker")

Handler: TypeAlias = Callable[[Job], Awaitable[Mapping[str, Any] | None]]
"""An async job handler: takes the :class:`Job`, returns a JSON object (or ``None``)."""

NON_RETRYABLE_CODES: Final = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)
"""Status codes that end ``run()`` instead of a reconnect: retrying cannot fix them."""

TRACING_SERVICE_NAME: Final = "stella-worker"
"""``service.name`` of a worker's spans unless ``OTEL_SERVICE_NAME`` is set."""


def _sdk_version() -> str:
    try:
        return version("stella-orchestrator-sdk")
    except PackageNotFoundError:
        return "0.0.0"


def default_worker_id() -> str:
    """``<hostname>-<pid>-<6 random hex>``: unique per process, readable in leases."""
    return f"{socket.gethostname()}-{os.getpid()}-{random.getrandbits(24):06x}"


@dataclass
class WorkerStats:
    """Counters since the worker was created (a cheap hook for metrics exporters)."""

    assigned: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0
    connects: int = 0
    stream_failures: int = 0


class Worker:
    """A worker process's connection to the leases service.

    Register async handlers with :meth:`handler`, then ``await run()`` (or call
    :meth:`run_forever` from a script). The worker opens a ``LeaseService.Work`` stream,
    runs assignments as tasks (never more than ``concurrency`` at once), reports results in
    batches, heartbeats leases on its own and reconnects when the stream breaks.

    Args:
        target: The leases service: ``host:port``, a comma list of replicas
            (``10.0.0.1:50052,10.0.0.2:50052``) or a gRPC name such as
            ``dns:///leases:50052`` (every address of the name). The channel balances
            ``round_robin``: each Work stream (a reconnect, a drained stream) goes to the
            next replica that is up (:mod:`stella_orchestrator.targets`).
        token: Bearer token with scope ``orch:work``, or a function returning one (called
            at every connect, so a rotating token works).
        job_types: Job types to ask for; default: the types of the registered handlers.
            Each must have a handler.
        concurrency: Most handlers running at once; also the capacity sent in Hello.
        worker_id: Id shown in leases; default ``hostname-pid-random``.
        tenant: Tenant to act for when the token names several (``x-stella-tenant``).
        channel_options: gRPC channel arguments (default :data:`DEFAULT_CHANNEL_OPTIONS`);
            ``round_robin`` is added unless they set ``grpc.service_config`` or
            ``grpc.lb_policy_name``.
        credentials: TLS channel credentials (e.g. ``grpc.ssl_channel_credentials()`` for
            the system's roots, or with a client certificate); ``None`` opens a plaintext
            channel unless ``tls_ca_file`` is given.
        tls_ca_file: PEM file of the CA that signed the server's certificate: the channel
            speaks TLS and trusts only that CA (the same option as Go's ``WithTLSCAFile``
            and Rust's ``tls_ca_file``; docs/deploy.md "TLS").
        max_batch_delay_s: How long a report waits for others to share its message.
        drain_timeout_s: How long a drain lets running handlers finish before it cancels
            them (they are then failed as ``canceled``, retryable).
        labels: Free-form labels sent in Hello (region, pool...).
        max_reconnect_attempts: Consecutive failed connects before ``run()`` raises the
            last error; ``None`` retries forever.
        rng: Randomness for the backoff jitter (seed it in tests).
        metrics_port: Serve Prometheus metrics on this port while ``run()`` runs (0: a free
            port); ``None`` reads ``STELLA_METRICS_PORT`` and, when that is unset too,
            exports nothing (docs/metrics.md, "Worker SDKs").

    Raises:
        ValueError: ``concurrency`` < 1, a negative delay/timeout, both ``credentials``
            and ``tls_ca_file``, or ``STELLA_METRICS_PORT`` that is not a port.
        OSError: ``tls_ca_file`` cannot be read.
    """

    SDK_NAME: Final = "python"
    SDK_VERSION: Final = _sdk_version()

    def __init__(
        self,
        target: str,
        *,
        token: str | Callable[[], str],
        job_types: Sequence[str] | None = None,
        concurrency: int = 10,
        worker_id: str | None = None,
        tenant: str | None = None,
        channel_options: Sequence[tuple[str, Any]] = DEFAULT_CHANNEL_OPTIONS,
        credentials: grpc.ChannelCredentials | None = None,
        tls_ca_file: str | os.PathLike[str] | None = None,
        max_batch_delay_s: float = 0.002,
        drain_timeout_s: float = 30.0,
        labels: Mapping[str, str] | None = None,
        max_reconnect_attempts: int | None = None,
        rng: random.Random | None = None,
        metrics_port: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if max_batch_delay_s < 0 or drain_timeout_s < 0:
            raise ValueError("max_batch_delay_s and drain_timeout_s must be >= 0")
        credentials = resolve_credentials(credentials, tls_ca_file)
        self.target = target
        self._token = token
        self._job_types = list(job_types) if job_types is not None else None
        self.concurrency = concurrency
        self.worker_id = worker_id or default_worker_id()
        self.tenant = tenant
        self.channel_options = list(channel_options)
        self.credentials = credentials
        self.max_batch_delay_s = max_batch_delay_s
        self.drain_timeout_s = drain_timeout_s
        self.labels = dict(labels or {})
        self.max_reconnect_attempts = max_reconnect_attempts
        self.stats = WorkerStats()
        self.metrics = WorkerMetrics(
            metrics_port if metrics_port is not None else metrics_port_from_env()
        )
        self.handlers: dict[str, Handler] = {}
        self.drain_requested = False
        self.drain_reason = "shutdown"
        self.stop_requested = False
        self._rng = rng or random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None  # thread of the loop run() runs on
        self._session: Session | None = None
        self._wake: asyncio.Event | None = None
        self._stop_event: asyncio.Event | None = None
        self._finished: asyncio.Event | None = None
        self._running = False

    # ----------------------------------------------------------------- registration

    def handler(self, job_type: str) -> Callable[[Handler], Handler]:
        """Decorator registering an async handler for ``job_type``.

        The handler gets the :class:`Job` and returns a JSON object (the job's result) or
        ``None``. Raising :class:`JobFailure` fails the attempt with its class; any other
        exception fails it as ``internal`` (``TimeoutError``: ``timeout``).

        Args:
            job_type: Job type, e.g. ``"advisory.ingest"``.

        Returns:
            The decorator; it returns the function unchanged.

        Raises:
            ValueError: A handler for ``job_type`` exists already (or the name is empty).
            TypeError: The function is not ``async def``.
        """

        def register(fn: Handler) -> Handler:
            self.add_handler(job_type, fn)
            return fn

        return register

    def add_handler(self, job_type: str, fn: Handler) -> None:
        """Register ``fn`` for ``job_type`` (the non-decorator form of :meth:`handler`).

        Raises:
            ValueError: Empty or already registered job type.
            TypeError: ``fn`` is not a coroutine function.
        """
        if not job_type:
            raise ValueError("job_type must not be empty")
        if job_type in self.handlers:
            raise ValueError(f"a handler for {job_type!r} is already registered")
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"handler for {job_type!r} must be an async function")
        self.handlers[job_type] = fn

    @property
    def job_types(self) -> list[str]:
        """Job types sent in Hello."""
        return list(self._job_types) if self._job_types is not None else sorted(self.handlers)

    # ----------------------------------------------------------------- running

    @property
    def stop_event(self) -> asyncio.Event:
        assert self._stop_event is not None, "only while run() runs"
        return self._stop_event

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return call_metadata(self._token, self.tenant)

    def _channel(self) -> grpc.aio.Channel:
        return aio_channel(self.target, self.channel_options, self.credentials)

    async def run(self) -> None:
        """Serve jobs until :meth:`drain` or :meth:`stop`.

        Raises:
            RPCError: The server refused the worker (UNAUTHENTICATED, PERMISSION_DENIED,
                INVALID_ARGUMENT), or ``max_reconnect_attempts`` ran out.
            ValueError: No handlers, a ``job_types`` entry without a handler, or a
                target that is not ``host:port``, a list of them or a gRPC name.
            RuntimeError: ``run()`` is already running.
        """
        if self._running:
            raise RuntimeError("Worker.run() is already running")
        if not self.handlers:
            raise ValueError("register at least one handler before run()")
        missing = [t for t in self.job_types if t not in self.handlers]
        if missing:
            raise ValueError(f"job_types without a handler: {', '.join(missing)}")
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._wake = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._finished = asyncio.Event()
        if self.stop_requested:
            self._stop_event.set()
        self._running = True
        backoff = Backoff(rng=self._rng)
        failures = 0
        try:
            async with self._channel() as channel, self.metrics.serving():
                stub = leases_pb2_grpc.LeaseServiceStub(channel)
                while not (self.stop_requested or self.drain_requested):
                    # (A drain requested while disconnected has nothing in flight to finish.)
                    self.stats.connects += 1
                    session = self._session = Session(self, stub.Work(metadata=self._metadata()))
                    try:
                        outcome = await session.run()
                    except RPCError as error:
                        if error.code in NON_RETRYABLE_CODES:
                            LOGGER.error("the server refused the worker: %s", error)
                            raise
                        self.stats.stream_failures += 1
                        failures = 0 if session.welcomed else failures + 1
                        if self.max_reconnect_attempts is not None and (
                            failures >= self.max_reconnect_attempts
                        ):
                            raise
                        LOGGER.warning("Work stream failed: %s", error)
                    else:
                        if outcome in ("drained", "stopped"):
                            return
                        failures = 0
                    finally:
                        self._session = None
                    if session.welcomed:
                        backoff.reset()
                    if self.drain_requested or self.stop_requested:
                        return
                    delay = backoff.next_delay()
                    LOGGER.info("reconnecting in %.2f s", delay)
                    await self._sleep(delay)
        finally:
            self._running = False
            # A later run() starts afresh.
            self.drain_requested = self.stop_requested = False
            self._finished.set()

    async def _sleep(self, delay_s: float) -> None:
        assert self._wake is not None
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                await self._wake.wait()

    def request_drain(self, reason: str = "shutdown") -> None:
        """Start a graceful drain without waiting for it (safe from signal handlers and
        other threads): tell the server to stop assigning, let running handlers finish
        (up to ``drain_timeout_s``), flush their results, close the stream; ``run()``
        then returns."""
        if self._running and self._loop is not None and threading.get_ident() != self._thread_id:
            self._loop.call_soon_threadsafe(self.request_drain, reason)
            return
        self.drain_requested = True
        self.drain_reason = reason
        self._poke()

    async def drain(self, reason: str = "shutdown") -> None:
        """Drain gracefully (see :meth:`request_drain`) and wait until ``run()`` returned.

        Args:
            reason: Sent to the server in WorkerDrain, for its logs.
        """
        self.request_drain(reason)
        if self._running and self._finished is not None:
            await self._finished.wait()

    def stop(self) -> None:
        """Stop at once: cancel running handlers (their results are dropped and the server
        re-leases the jobs), close the stream; ``run()`` then returns. Safe from other
        threads."""
        if self._running and self._loop is not None and threading.get_ident() != self._thread_id:
            self._loop.call_soon_threadsafe(self.stop)
            return
        self.stop_requested = True
        if self._stop_event is not None:
            self._stop_event.set()
        self._poke()

    def _poke(self) -> None:
        if self._session is not None:
            self._session.signal.set()
        if self._wake is not None:
            self._wake.set()

    def run_forever(self) -> None:
        """Run the worker in a new event loop until SIGTERM/SIGINT (for scripts).

        The first signal drains gracefully; a second one stops at once. Tracing is set up
        from the ``OTEL_*`` variables (off unless they ask for it, service name
        ``stella-worker`` unless ``OTEL_SERVICE_NAME`` says otherwise) and flushed at the end;
        an application calling :meth:`run` sets up its own provider, or calls
        :func:`stella_orchestrator.telemetry.configure_tracing`.

        Raises:
            RPCError: As :meth:`run`.
        """
        tracing = telemetry.configure_tracing(TRACING_SERVICE_NAME)
        try:
            asyncio.run(self._run_with_signals())
        finally:
            if tracing is not None:
                tracing.shutdown()

    async def _run_with_signals(self) -> None:
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        seen = 0

        def on_signal(signum: signal.Signals) -> None:
            nonlocal seen
            seen += 1
            name = signum.name
            if seen == 1:
                LOGGER.info("%s: draining (send it again to stop at once)", name)
                self.request_drain(name.lower())
            else:
                LOGGER.warning("%s again: stopping", name)
                self.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, on_signal, signum)
                installed.append(signum)
            except (NotImplementedError, RuntimeError):  # not the main thread / Windows
                pass
        try:
            await self.run()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
