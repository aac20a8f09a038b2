"""One Work stream, from Hello to its end.

Tasks of a session (all named, all canceled when it ends):

* reader — applies server messages: Welcome (session parameters), AssignmentBatch (start
  handlers), ResultBatch (acks; ``lease_lost`` cancels the job), CancelJobs, ServerDrain;
* sender — the only writer; see ``_outbox``;
* ticker — heartbeats every held lease at the interval the Welcome gave, sends urgent
  progress, and cancels a job whose lease ran out without an acknowledged heartbeat;
* control — waits for a drain or stop request and runs the drain sequence: stop taking
  work, let handlers finish (``drain_timeout_s``), wait until every result is acknowledged,
  half-close, and read the server's remaining messages to the end.

A handler runs in its own task bound to its :class:`ActiveJob` (contextvars), so
``heartbeat()``/``progress()``/``artifact()`` find their job. The session never runs more
than ``concurrency`` handlers: should the server ever push more, the extra leases wait
(heartbeated) for a free slot. When the stream breaks, every handler is canceled and its
result dropped: the server releases leases of a dead stream, so reporting them later would
only meet ``lease_lost``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import grpc

from stella.orchestrator.v1 import common_pb2, leases_pb2
from stella_orchestrator.errors import RPCError
from stella_orchestrator.worker._context import ActiveJob, bind
from stella_orchestrator.worker._digest import result_digest
from stella_orchestrator.worker._errors import FailureInfo, classify
from stella_orchestrator.worker._job import ArtifactRecord, Job, from_struct, to_struct
from stella_orchestrator.worker._outbox import DEFAULT_MAX_BATCH, Outbox, sender_loop
from stella_orchestrator.worker._tracing import handler_span

if TYPE_CHECKING:
    from stella_orchestrator.worker._worker import Handler, Worker

LOGGER = logging.getLogger("stella_orchestrator.worker")

DEFAULT_LEASE_TTL_S: Final = 30.0
"""Assumed lease TTL when the Welcome names none."""
HEARTBEAT_FRACTION_OF_TTL: Final = 1 / 3
"""Heartbeat interval as a share of the lease TTL when the Welcome names no interval."""
MIN_HEARTBEAT_INTERVAL_S: Final = 0.05
TICK_MAX_S: Final = 0.25
"""Ticker period (at most); also bounds how late a heartbeat can be."""
PROGRESS_MIN_INTERVAL_S: Final = 1.0
"""``progress()`` values of one job go out at most this often."""
WELCOME_TIMEOUT_S: Final = 30.0
FLUSH_TIMEOUT_S: Final = 10.0
"""How long a drain waits for acknowledgements and for the server to end the stream."""
CANCEL_GRACE_S: Final = 5.0
"""How long to wait for canceled handlers to unwind before giving up on them."""

LEASE_LOST_REASONS: Final = frozenset({"lease_lost", "not_found", "already_completed"})
_RESULT_KINDS: Final = frozenset({leases_pb2.ACK_KIND_COMPLETION, leases_pb2.ACK_KIND_FAILURE})

# Why the SDK canceled a handler; only DRAIN_TIMEOUT reports a failure (the stream is still
# up and the job deserves a prompt retry), the others drop the result.
LEASE_LOST: Final = "lease_lost"
LEASE_EXPIRED: Final = "lease_expired"
SERVER_CANCELED: Final = "server_canceled"
DRAIN_TIMEOUT: Final = "drain_timeout"
STREAM_CLOSED: Final = "stream_closed"


class Held:
    """Bookkeeping of one lease the session holds (running or waiting for a slot)."""

    __slots__ = ("active", "deadline", "handler", "hb_next", "hb_sent_at", "progress_sent_at")

    def __init__(self, active: ActiveJob, handler: Handler, now: float, ttl_s: float) -> None:
        self.active = active
        self.handler = handler
        self.hb_next = 0.0
        self.hb_sent_at = now
        self.progress_sent_at = 0.0
        self.deadline = now + ttl_s


class Session:
    """One Work stream (see the module docstring)."""

    def __init__(self, worker: Worker, call: Any) -> None:
        self.worker = worker
        self.call = call
        self.loop = asyncio.get_running_loop()
        self.outbox = Outbox()
        self.held: dict[str, Held] = {}
        self.waiting: deque[Held] = deque()
        self.running = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.signal = asyncio.Event()  # drain/stop requested or server drain
        self.idle = asyncio.Event()
        self.idle.set()
        self.acked = asyncio.Event()
        self.acked.set()
        self.unacked_results = 0
        self.welcomed = False
        self.server_draining = False
        self.closing = False
        self.closed = False
        self.lease_ttl_s = DEFAULT_LEASE_TTL_S
        self.heartbeat_interval_s = DEFAULT_LEASE_TTL_S * HEARTBEAT_FRACTION_OF_TTL
        self.heartbeat_acked = False
        self.session_id = ""
        self._reader: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- lifecycle

    async def run(self) -> str:
        """Run the stream to its end.

        Returns:
            ``"drained"`` (worker drain done), ``"stopped"`` (``Worker.stop()``) or
            ``"server_drained"`` (the server drained us; reconnect).

        Raises:
            RPCError: The stream failed or ended unexpectedly.
        """
        w = self.worker
        try:
            await self._write(
                leases_pb2.WorkRequest(
                    hello=leases_pb2.WorkerHello(
                        worker_id=w.worker_id,
                        job_types=w.job_types,
                        capacity=w.concurrency,
                        sdk=w.SDK_NAME,
                        sdk_version=w.SDK_VERSION,
                        labels=w.labels,
                    )
                )
            )
            if not await self._await_welcome():
                return "stopped"
            reader = self._reader = self._spawn(self._read_loop(), "reader")
            sender = self._spawn(
                sender_loop(self.outbox, self._write, self._done_writing, w.max_batch_delay_s),
                "sender",
            )
            control = self._spawn(self._control(), "control")
            self._spawn(self._tick_loop(), "ticker")
            pending: set[asyncio.Task[Any]] = {reader, sender, control}
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if control in done:
                    return control.result()
                if reader in done:
                    reader.result()  # raises the stream's RPCError
                    if not self.closing:
                        if self.server_draining:
                            return "server_drained"
                        raise await self._ended_error()
                if sender in done:
                    sender.result()  # raises if a write failed
        finally:
            await self._shutdown()

    async def _await_welcome(self) -> bool:
        read = asyncio.ensure_future(self._read())
        stop = asyncio.ensure_future(self.worker.stop_event.wait())
        try:
            done, _ = await asyncio.wait(
                {read, stop}, timeout=WELCOME_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
        if read not in done:
            read.cancel()
            if stop in done:
                return False
            raise RPCError(grpc.StatusCode.DEADLINE_EXCEEDED, "no Welcome from the server")
        message = read.result()
        if message is grpc.aio.EOF:
            raise await self._ended_error()
        if message.WhichOneof("body") != "welcome":
            raise RPCError(grpc.StatusCode.INTERNAL, "server did not answer Hello with Welcome")
        self._on_welcome(message.welcome)
        return True

    async def _shutdown(self) -> None:
        self.closed = True
        for held in list(self.held.values()):
            self._cancel(held.active.job.id, STREAM_CLOSED, log=False)
        handlers = [h.active.task for h in self.held.values() if h.active.task is not None]
        helpers = list(self.tasks)
        for task in helpers:
            task.cancel()
        if handlers:
            _, stuck = await asyncio.wait(handlers, timeout=CANCEL_GRACE_S)
            if stuck:
                LOGGER.warning(
                    "%d handler(s) ignored cancellation for %.0f s; leaving them behind",
                    len(stuck),
                    CANCEL_GRACE_S,
                )
        await asyncio.gather(*helpers, return_exceptions=True)
        self.call.cancel()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro, name=f"stella-worker-{name}")
        self.tasks.add(task)
        return task

    # ----------------------------------------------------------------- wire helpers

    async def _read(self) -> Any:
        try:
            return await self.call.read()
        except grpc.aio.AioRpcError as exc:
            raise RPCError.from_grpc(exc) from exc

    async def _write(self, request: leases_pb2.WorkRequest) -> None:
        try:
            await self.call.write(request)
        except grpc.aio.AioRpcError as exc:
            raise RPCError.from_grpc(exc) from exc
        except asyncio.InvalidStateError:
            # The RPC finished (or we half-closed); the reader reports how it ended.
            raise await self._ended_error() from None

    async def _done_writing(self) -> None:
        try:
            await self.call.done_writing()
        except grpc.aio.AioRpcError as exc:
            raise RPCError.from_grpc(exc) from exc
        except asyncio.InvalidStateError:
            pass

    async def _ended_error(self) -> RPCError:
        """The error for a stream the server ended without a drain."""
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT_S):
                code = await self.call.code()
            details = await self.call.details()
            trailing = await self.call.trailing_metadata()
        except (TimeoutError, grpc.RpcError):
            return RPCError(grpc.StatusCode.UNAVAILABLE, "Work stream ended")
        if code == grpc.StatusCode.OK:
            return RPCError(grpc.StatusCode.UNAVAILABLE, "server ended the Work stream")

        class _Ended(grpc.RpcError):
            def code(self) -> grpc.StatusCode:
                return code

            def details(self) -> str:
                return details or ""

            def trailing_metadata(self) -> Any:
                return trailing

        return RPCError.from_grpc(_Ended())

    # ----------------------------------------------------------------- server messages

    def _on_welcome(self, welcome: leases_pb2.ServerWelcome) -> None:
        self.welcomed = True
        self.session_id = welcome.session_id
        if welcome.HasField("lease_ttl") and welcome.lease_ttl.ToNanoseconds() > 0:
            self.lease_ttl_s = welcome.lease_ttl.ToNanoseconds() / 1e9
        if welcome.HasField("heartbeat_interval") and welcome.heartbeat_interval.ToNanoseconds():
            interval = welcome.heartbeat_interval.ToNanoseconds() / 1e9
        else:
            interval = self.lease_ttl_s * HEARTBEAT_FRACTION_OF_TTL
        # Never let a lease run out between two heartbeats, whatever the server said.
        self.heartbeat_interval_s = max(
            MIN_HEARTBEAT_INTERVAL_S, min(interval, self.lease_ttl_s / 2)
        )
        self.outbox.max_batch = welcome.max_batch if welcome.max_batch > 0 else DEFAULT_MAX_BATCH
        LOGGER.info(
            "connected to %s (session %s, lease ttl %.1f s, heartbeat every %.2f s)",
            self.worker.target,
            self.session_id or "-",
            self.lease_ttl_s,
            self.heartbeat_interval_s,
        )

    async def _read_loop(self) -> None:
        while True:
            message = await self._read()
            if message is grpc.aio.EOF:
                return
            body = message.WhichOneof("body")
            if body == "assignments":
                for assignment in message.assignments.assignments:
                    self._on_assignment(assignment)
            elif body == "results":
                self._on_acks(message.results.acks)
            elif body == "cancel":
                reason = message.cancel.reason or SERVER_CANCELED
                for job_id in message.cancel.job_ids:
                    self._cancel(job_id, SERVER_CANCELED, detail=reason)
            elif body == "drain":
                LOGGER.info("server drains the stream (%s)", message.drain.reason or "-")
                self.server_draining = True
                self.signal.set()
            elif body == "welcome":
                self._on_welcome(message.welcome)

    def _on_assignment(self, assignment: leases_pb2.Assignment) -> None:
        job = Job.from_assignment(assignment)
        if job.id in self.held:
            LOGGER.warning("job %s assigned twice on one stream; keeping the first", job.id)
            return
        handler = self.worker.handlers.get(job.job_type)
        if handler is None:
            # Only a server ignoring Hello.job_types gets here; another worker may serve it.
            self._report_failure(
                job, FailureInfo("internal", f"no handler for job type {job.job_type!r}", True)
            )
            return
        now = time.monotonic()
        held = Held(ActiveJob(job, self, self.loop), handler, now, self.lease_ttl_s)
        held.hb_next = now + self.heartbeat_interval_s
        self.held[job.id] = held
        self.idle.clear()
        self.worker.stats.assigned += 1
        if self.running < self.worker.concurrency:
            self._start(held)
        else:
            self.waiting.append(held)

    def _on_acks(self, acks: Any) -> None:
        for ack in acks:
            if ack.kind in _RESULT_KINDS:
                self.unacked_results = max(0, self.unacked_results - 1)
                if not self.unacked_results:
                    self.acked.set()
                if not ack.ok:
                    LOGGER.warning(
                        "server refused the %s of job %s: %s",
                        "completion" if ack.kind == leases_pb2.ACK_KIND_COMPLETION else "failure",
                        ack.job_id,
                        ack.error_reason or "unknown reason",
                    )
                continue
            held = self.held.get(ack.job_id)
            if held is None or held.active.job.lease_id != ack.lease_id:
                continue
            if not ack.ok and ack.error_reason in LEASE_LOST_REASONS:
                self._cancel(ack.job_id, LEASE_LOST, detail=ack.error_reason)
            elif ack.ok and ack.kind == leases_pb2.ACK_KIND_HEARTBEAT:
                self.heartbeat_acked = True
                held.deadline = held.hb_sent_at + self.lease_ttl_s

    # ----------------------------------------------------------------- handlers

    def _start(self, held: Held) -> None:
        self.running += 1
        held.active.task = self.loop.create_task(
            self._run_handler(held), name=f"stella-job-{held.active.job.id}"
        )

    async def _run_handler(self, held: Held) -> None:
        active = held.active
        job = active.job
        bind(active)
        started = time.monotonic()
        self.worker.metrics.started(job.job_type)
        try:
            try:
                with handler_span(job, self.worker.worker_id):
                    result = await held.handler(job)
            except asyncio.CancelledError:
                if active.cancel_reason is not None:
                    self._after_cancel(active)
                    return
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # canceled by someone else (event loop shutdown): let it propagate
                # A CancelledError the handler raised itself (an awaited future was
                # canceled): a failed attempt, not a cancellation of this job.
                self._report_failure(
                    job, FailureInfo("canceled", "handler raised CancelledError", True)
                )
                return
            except Exception as exc:
                if active.cancel_reason is not None:
                    self._after_cancel(active)
                    return
                info = classify(exc)
                LOGGER.warning(
                    "job %s (%s, attempt %d) failed: class %s, retryable %s",
                    job.id,
                    job.job_type,
                    job.attempt,
                    info.error_class,
                    info.retryable,
                    exc_info=info.error_class == "internal",
                )
                self._report_failure(job, info)
                return
            if active.cancel_reason is not None:
                self._after_cancel(active)  # finished after we canceled it: drop the result
                return
            self._report_result(job, result)
            LOGGER.debug(
                "job %s (%s) succeeded in %.3f s", job.id, job.job_type, time.monotonic() - started
            )
        finally:
            self.worker.metrics.finished(job.job_type, time.monotonic() - started)
            self._release(held)

    def _after_cancel(self, active: ActiveJob) -> None:
        job = active.job
        self.worker.stats.canceled += 1
        self.worker.metrics.canceled(job.job_type)
        if active.cancel_reason == DRAIN_TIMEOUT:
            self._report_failure(
                job,
                FailureInfo(
                    "canceled", "worker drained: the handler outlived the drain timeout", True
                ),
            )
        elif not self.closed:
            # No report will free this slot on the server: hand the credit back.
            self.outbox.add_credit(job.id)

    def _report_result(self, job: Job, result: object) -> None:
        completion = leases_pb2.Completion(job_id=job.id, lease_id=job.lease_id)
        if result is not None:
            if not isinstance(result, Mapping):
                self._report_failure(
                    job,
                    FailureInfo(
                        "internal",
                        f"handler returned {type(result).__name__}; expected a dict or None",
                        False,
                    ),
                )
                return
            try:
                struct = to_struct(result)
                # Digest what the server will store: the Struct form (numbers are doubles).
                completion.result_digest = result_digest(from_struct(struct))
            except ValueError as exc:
                self._report_failure(
                    job, FailureInfo("internal", f"handler result is not JSON: {exc}", False)
                )
                return
            completion.result.CopyFrom(struct)
        if self.closed:
            return
        self.worker.stats.completed += 1
        self.worker.metrics.succeeded(job.job_type)
        self._expect_ack()
        self.outbox.add_completion(completion)

    def _report_failure(self, job: Job, info: FailureInfo) -> None:
        if self.closed:
            return
        self.worker.stats.failed += 1
        self.worker.metrics.failed(job.job_type, info.error_class)
        self._expect_ack()
        self.outbox.add_failure(
            leases_pb2.Failure(job_id=job.id, lease_id=job.lease_id, error=info.to_proto())
        )

    def _expect_ack(self) -> None:
        self.unacked_results += 1
        self.acked.clear()

    def _release(self, held: Held) -> None:
        self.held.pop(held.active.job.id, None)
        self.running -= 1
        while self.waiting and self.running < self.worker.concurrency and not self.closed:
            self._start(self.waiting.popleft())
        if not self.held:
            self.idle.set()

    def _cancel(self, job_id: str, reason: str, *, detail: str = "", log: bool = True) -> None:
        held = self.held.get(job_id)
        if held is None or held.active.cancel_reason is not None:
            return
        held.active.cancel_reason = reason
        if log:
            LOGGER.info("canceling job %s: %s", job_id, detail or reason)
        task = held.active.task
        if task is not None:
            task.cancel()
            return
        # Still waiting for a slot: nothing runs, just give the lease back.
        self.waiting.remove(held)
        self.held.pop(job_id, None)
        self._after_cancel(held.active)
        if not self.held:
            self.idle.set()

    # JobSink: called by artifact() in the handler's task.
    def record_artifact(self, active: ActiveJob, record: ArtifactRecord) -> None:
        if self.closed or active.cancel_reason is not None:
            return
        self.outbox.add_artifact(record.to_proto(active.job.id, active.job.lease_id))

    # ----------------------------------------------------------------- ticker

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(min(TICK_MAX_S, self.heartbeat_interval_s / 4))
            self.tick(time.monotonic())

    def tick(self, now: float) -> None:
        """Send due heartbeats and urgent progress; cancel jobs whose lease ran out."""
        for job_id, held in list(self.held.items()):
            active = held.active
            if active.cancel_reason is not None:
                continue
            if self.heartbeat_acked and now > held.deadline:
                # Only once the server has acked a heartbeat on this stream do we trust
                # our deadline: a server that never acks heartbeats would otherwise kill
                # every job after one TTL.
                self._cancel(job_id, LEASE_EXPIRED, detail="no heartbeat acknowledged in time")
                continue
            job = active.job
            if now >= held.hb_next:
                heartbeat = leases_pb2.Heartbeat(job_id=job.id, lease_id=job.lease_id)
                if active.progress_dirty:
                    heartbeat.progress.CopyFrom(self._progress(active))
                    held.progress_sent_at = now
                self.outbox.add_heartbeat(heartbeat)
                held.hb_sent_at = now
                held.hb_next = now + self.heartbeat_interval_s
            elif active.progress_urgent and now - held.progress_sent_at >= PROGRESS_MIN_INTERVAL_S:
                self.outbox.add_progress(
                    leases_pb2.ProgressReport(
                        job_id=job.id, lease_id=job.lease_id, progress=self._progress(active)
                    )
                )
                held.progress_sent_at = now

    @staticmethod
    def _progress(active: ActiveJob) -> common_pb2.Progress:
        active.progress_dirty = False
        active.progress_urgent = False
        return common_pb2.Progress(
            percent=active.progress_percent or 0.0, message=active.progress_message
        )

    # ----------------------------------------------------------------- drain

    async def _control(self) -> str:
        w = self.worker
        while not (w.stop_requested or w.drain_requested or self.server_draining):
            await self.signal.wait()
            self.signal.clear()
        if w.stop_requested:
            return "stopped"
        if w.drain_requested:
            LOGGER.info("draining: %d job(s) in flight", len(self.held))
            self.outbox.request_drain(w.drain_reason)
        if not await self._until(self.idle, w.drain_timeout_s):
            if w.stop_requested:
                return "stopped"
            LOGGER.warning(
                "drain timeout (%.1f s): canceling %d job(s)", w.drain_timeout_s, len(self.held)
            )
            for job_id in list(self.held):
                self._cancel(job_id, DRAIN_TIMEOUT)
            await self._until(self.idle, CANCEL_GRACE_S)
        if not await self._until(self.acked, FLUSH_TIMEOUT_S) and w.stop_requested:
            return "stopped"
        self.closing = True
        self.outbox.request_close()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=FLUSH_TIMEOUT_S)
        return "drained" if w.drain_requested else "server_drained"

    async def _until(self, event: asyncio.Event, timeout_s: float) -> bool:
        """Wait for ``event`` up to ``timeout_s``; False on timeout or a stop request."""
        wait = asyncio.ensure_future(event.wait())
        stop = asyncio.ensure_future(self.worker.stop_event.wait())
        try:
            await asyncio.wait({wait, stop}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wait.cancel()
            stop.cancel()
        return event.is_set() and not self.worker.stop_requested
