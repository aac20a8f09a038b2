"""WorkSession: one worker's Work stream after its hello.

Three tasks cooperate: the **reader** turns each WorkerBatch into completer submissions (its
awaits are the backpressure), frees the slots completions, failures and credits give back,
and queues the pending acks; the **acker** waits for those acks in order and sends one
ResultBatch per WorkerBatch (plus CancelJobs when a heartbeat found its job canceled); the
**dispatcher** (shared by all sessions) pushes AssignmentBatches while the session has free
slots. Everything the server sends goes through one queue that the RPC's response generator
drains, so grpc sees a single writer.

Slots: ``capacity - in_flight - reserved``; ``in_flight`` grows with each assignment and
shrinks when a completion or failure the worker sent has been *applied* (committed by the
completer, whatever its outcome: the slot is the worker's to reuse), or at once for a credit
or a malformed report. Freeing a slot on receipt instead let a slow completer fall behind
without bound while new claims kept coming: thousands of received-but-unapplied results per
session whose leases the watchdog then expired. So a session never holds more leases that
are not yet ended in the ledger than its capacity, and a slow database slows the claims
down instead of letting leases run out. WorkerDrain stops assignments; results are still
accepted. When the stream ends — cleanly, with an error or because the client vanished —
reports already submitted are awaited, then every lease the session still holds is
released at once (fenced by lease id: ready now, reason ``worker_disconnected``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from orchestrator_core import FieldViolation, InvalidArgument
from orchestrator_leases import _convert as convert
from orchestrator_leases import _metrics as metrics
from orchestrator_leases._actor import Actor
from orchestrator_leases._completer import Completer, Kind
from orchestrator_leases._tracing import LeaseSpans
from orchestrator_pg import LEASE_LOST, LeaseLedger, Outcome, Row
from stella.orchestrator.v1 import leases_pb2

# A pending ack entry: per kind, the future of its submission and the ack slots (an int
# indexes the outcomes, a ResultAck is a ready-made ack of a malformed report).
_AckPart = tuple[Kind, "asyncio.Future[list[Outcome]] | None", list["int | leases_pb2.ResultAck"]]

_log = logging.getLogger("orchestrator_leases.session")


class Dispatch(Protocol):
    """What a session needs from the dispatcher."""

    def register(self, session: WorkSession) -> None: ...
    def unregister(self, session: WorkSession) -> None: ...
    def poke(self, session: WorkSession) -> None: ...


class WorkSession:
    """One Work stream.

    Args:
        session_id: server-assigned id (sent in ServerWelcome).
        worker_id: the worker's id from its hello (recorded on its leases).
        actor: identity and tenants of the worker's token.
        job_types: job types this session runs (hello ∩ token).
        capacity: most jobs the worker holds at once.
        completer: the write batcher.
        ledger: the lease ledger (for the release at the end).
        dispatcher: the shared assignment dispatcher.
    """

    def __init__(
        self,
        *,
        session_id: str,
        worker_id: str,
        actor: Actor,
        job_types: tuple[str, ...],
        capacity: int,
        completer: Completer,
        ledger: LeaseLedger,
        dispatcher: Dispatch,
    ) -> None:
        self.session_id = session_id
        self.worker_id = worker_id
        self.actor = actor
        self.job_types = job_types
        self.capacity = capacity
        self.in_flight = 0
        self.reserved = 0
        self.draining = False
        self.server_drained = False
        self.closed = False
        self.leases: dict[uuid.UUID, uuid.UUID] = {}
        self.group: Any = None  # the dispatcher's bookkeeping
        self._completer = completer
        self._ledger = ledger
        self._dispatcher = dispatcher
        self._out: asyncio.Queue[leases_pb2.WorkResponse | None] = asyncio.Queue()
        self._acks: asyncio.Queue[list[_AckPart] | None] = asyncio.Queue()
        self._submitted: set[asyncio.Future[list[Outcome]]] = set()
        self._spans = LeaseSpans(worker_id, session_id)

    @property
    def free_slots(self) -> int:
        """Slots the dispatcher may fill now (0 while draining or closed)."""
        if self.draining or self.closed:
            return 0
        return max(0, self.capacity - self.in_flight - self.reserved)

    def drain_from_server(self, reason: str) -> None:
        """Sends ServerDrain: no more assignments on this stream; results are still applied
        until the worker, done with what it holds, closes the stream."""
        if self.closed or self.server_drained:
            return
        self.server_drained = True
        self.draining = True
        self._out.put_nowait(leases_pb2.WorkResponse(drain=leases_pb2.ServerDrain(reason=reason)))

    def deliver(self, rows: Sequence[Row], build: Callable[[Row], Any]) -> bool:
        """Sends leased rows as one AssignmentBatch; False when the session is closed or
        draining (the caller releases the leases). A claim still in flight when a drain began
        must not reach the worker: it may be closing its stream already, and assignments that
        arrive then are cancelled as the stream ends (seen as handlers cancelled by a
        rebalance drain on a loaded machine)."""
        if self.closed or self.draining:
            return False
        self.in_flight += len(rows)
        leases = self.leases
        for row in rows:
            leases[row["id"]] = row["lease_id"]
        self._spans.leased(rows)
        batch = leases_pb2.AssignmentBatch(assignments=[build(r) for r in rows])
        self._out.put_nowait(leases_pb2.WorkResponse(assignments=batch))
        return True

    async def run(
        self, requests: AsyncIterator[leases_pb2.WorkRequest]
    ) -> AsyncIterator[leases_pb2.WorkResponse]:
        """Serves the stream after the welcome; yields what the server sends."""
        reader = asyncio.create_task(self._read(requests), name=f"work:{self.session_id}:read")
        acker = asyncio.create_task(self._ack_loop(), name=f"work:{self.session_id}:ack")
        metrics.LEASE_SESSIONS.inc()
        self._dispatcher.register(self)
        try:
            while True:
                message = await self._out.get()
                if message is None:
                    break
                yield message
            for task in (reader, acker):
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            self.closed = True
            self._dispatcher.unregister(self)
            metrics.LEASE_SESSIONS.dec()
            reader.cancel()
            acker.cancel()
            await asyncio.shield(self._close())

    async def _close(self) -> None:
        # Reports already handed to the completer land before the release, so a worker that
        # completes and hangs up keeps its completion.
        if self._submitted:
            await asyncio.gather(*self._submitted, return_exceptions=True)
        held = list(self.leases.items())
        self.leases.clear()
        self._spans.close()
        if not held:
            return
        try:
            outcomes = await self._ledger.lease_release_many(
                self.actor.ctx(),
                held,
                message=f"worker {self.worker_id} disconnected (session {self.session_id})",
            )
        except Exception:
            _log.exception("releasing %d leases of session %s failed", len(held), self.session_id)
            return
        metrics.LEASES_RELEASED.inc(sum(1 for o in outcomes if o.ok))

    async def _read(self, requests: AsyncIterator[leases_pb2.WorkRequest]) -> None:
        try:
            async for request in requests:
                body = request.WhichOneof("body")
                if body == "batch":
                    await self._on_batch(request.batch)
                elif body == "drain":
                    self.draining = True
                elif body == "hello":
                    raise InvalidArgument(
                        "WorkerHello may only be the first message of a Work stream",
                        [FieldViolation("hello", "sent twice")],
                    )
        finally:
            self._acks.put_nowait(None)

    def _slots_applied(self, slots: int, _: asyncio.Future[list[Outcome]]) -> None:
        self._free(slots)

    def _free(self, slots: int) -> None:
        if slots:
            self.in_flight = max(0, self.in_flight - slots)
            self._dispatcher.poke(self)

    async def _on_batch(self, batch: leases_pb2.WorkerBatch) -> None:
        self._free(batch.credits)
        parts: list[_AckPart] = []
        reports: list[tuple[Kind, Sequence[Any], Callable[[Any, str, convert.Violations], Any]]]
        reports = [
            (Kind.HEARTBEAT, batch.heartbeats, convert.heartbeat),
            (Kind.PROGRESS, batch.progress, convert.progress),
            (Kind.ARTIFACT, batch.artifacts, convert.artifact),
            (Kind.COMPLETION, batch.completions, convert.completion),
            (Kind.FAILURE, batch.failures, convert.failure),
        ]
        for kind, messages, parse in reports:
            if not messages:
                continue
            items: list[Any] = []
            slots: list[int | leases_pb2.ResultAck] = []
            ends_leases = kind is Kind.COMPLETION or kind is Kind.FAILURE
            for message in messages:
                if ends_leases:
                    self._spans.reported(message.job_id)
                violations = convert.Violations()
                item = parse(message, kind.name.lower(), violations)
                if violations.items:
                    slots.append(convert.invalid_ack(message.job_id, message.lease_id, kind))
                else:
                    slots.append(len(items))
                    items.append(item)
            future = await self._completer.submit(self.actor, kind, items) if items else None
            if ends_leases:
                self._free(len(messages) - len(items))  # malformed: nothing to wait for
            if future is not None:
                self._submitted.add(future)
                future.add_done_callback(self._submitted.discard)
                if ends_leases:
                    future.add_done_callback(functools.partial(self._slots_applied, len(items)))
            parts.append((kind, future, slots))
        if parts:
            self._acks.put_nowait(parts)

    async def _ack_loop(self) -> None:
        try:
            while True:
                parts = await self._acks.get()
                if parts is None:
                    return
                acks: list[leases_pb2.ResultAck] = []
                cancels: dict[str, list[str]] = {}
                for kind, future, slots in parts:
                    outcomes = await future if future is not None else []
                    for slot in slots:
                        if isinstance(slot, int):
                            outcome = outcomes[slot]
                            acks.append(convert.ack(outcome, kind))
                            self._settle(kind, outcome, cancels)
                        else:
                            acks.append(slot)
                self._out.put_nowait(
                    leases_pb2.WorkResponse(results=leases_pb2.ResultBatch(acks=acks))
                )
                for reason, job_ids in cancels.items():
                    self._out.put_nowait(
                        leases_pb2.WorkResponse(
                            cancel=leases_pb2.CancelJobs(job_ids=job_ids, reason=reason)
                        )
                    )
        finally:
            self._out.put_nowait(None)

    def _settle(self, kind: Kind, outcome: Outcome, cancels: dict[str, list[str]]) -> None:
        # Forget leases the session no longer holds, so the release at the end skips them.
        if kind is Kind.COMPLETION or kind is Kind.FAILURE:
            self._spans.settled(outcome, failed=kind is Kind.FAILURE)
            if outcome.ok or outcome.error_reason == LEASE_LOST:
                self._forget(outcome)
        elif not outcome.ok and outcome.error_reason == LEASE_LOST:
            self._spans.lost(outcome)
            self._forget(outcome)
            if outcome.cancel_reason:
                cancels.setdefault(outcome.cancel_reason, []).append(str(outcome.job_id))

    def _forget(self, outcome: Outcome) -> None:
        if self.leases.get(outcome.job_id) == outcome.lease_id:
            del self.leases[outcome.job_id]
