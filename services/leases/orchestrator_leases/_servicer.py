"""LeaseService: translates protobuf ↔ sessions, the completer and the ledger (STYLE 12).

Every method needs scope ``orch:work``. A worker serves the tenants of its token (every
tenant for a ``*`` token) and the job types of its hello/request intersected with the
token's ``job_types`` (when the token names any; else the requested ones).

Per-item results are ResultAcks (``ok=false, error_reason="lease_lost"`` for a stale lease),
never a FAILED_PRECONDITION status: a unary Complete/Fail/Heartbeat whose every item is
``lease_lost`` still returns OK with one failed ack per item, so a batch is never half
reported. Malformed requests (ids, digests, ranges) are INVALID_ARGUMENT with field
violations and change nothing; on the Work stream a malformed report gets an ack with
``error_reason="invalid_argument"`` instead, so one bad item does not end the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from orchestrator_core import FieldViolation, InvalidArgument, PermissionDenied
from orchestrator_grpckit import current_principal, method_scopes
from orchestrator_leases import _convert as convert
from orchestrator_leases._actor import Actor
from orchestrator_leases._completer import Completer, Kind
from orchestrator_leases._dispatcher import POLL_MAX_S, POLL_MIN_S, Dispatcher, record_claimed
from orchestrator_leases._session import WorkSession
from orchestrator_leases._settings import LeaseSettings
from orchestrator_pg import LeaseLedger, ReadyListener
from stella.orchestrator.v1 import leases_pb2, leases_pb2_grpc

SERVICE_NAME = "stella.orchestrator.v1.LeaseService"
WORK_SCOPE = "orch:work"
METHOD_SCOPES: dict[str, str] = method_scopes(
    SERVICE_NAME,
    dict.fromkeys(
        ("Work", "Claim", "Heartbeat", "Complete", "Fail", "RecordArtifacts"), WORK_SCOPE
    ),
)
# Every leases RPC acts for all the tenants the worker token grants (the claim filters by
# them): a shared fleet's token names several tenants or '*' and no x-stella-tenant.
TENANT_SPANNING_METHODS = frozenset(METHOD_SCOPES)
MAX_CAPACITY = 10_000
MAX_CLAIM_JOBS = 500
MAX_CLAIM_WAIT_S = 30.0
# Most entries a worker should put in one WorkerBatch (ServerWelcome.max_batch); also the
# most items a unary request may carry.
MAX_WORKER_BATCH = 500


def _job_types(requested: Sequence[str], allowed: Sequence[str], field: str) -> tuple[str, ...]:
    out = convert.Violations()
    types = convert.job_types(requested, field, out)
    out.raise_if_any("malformed job types")
    if allowed:
        types = [t for t in types if t in allowed] if types else list(allowed)
        if not types:
            raise PermissionDenied(
                f"the token allows job types {', '.join(allowed)}, none of those requested"
            )
    if not types:
        raise InvalidArgument(
            "name the job types to run", [FieldViolation(field, "must not be empty")]
        )
    return tuple(sorted(types))


def _check_size(n: int, field: str) -> None:
    if n > MAX_WORKER_BATCH:
        raise InvalidArgument(
            f"at most {MAX_WORKER_BATCH} items per request",
            [FieldViolation(field, f"has {n} items, at most {MAX_WORKER_BATCH}")],
        )


class LeaseServicer(leases_pb2_grpc.LeaseServiceServicer):
    """The worker hot path."""

    def __init__(
        self,
        ledger: LeaseLedger,
        completer: Completer,
        dispatcher: Dispatcher,
        listener: ReadyListener,
        settings: LeaseSettings,
    ) -> None:
        self._ledger = ledger
        self._completer = completer
        self._dispatcher = dispatcher
        self._listener = listener
        self._settings = settings
        self._rng = random.Random()

    # ------------------------------------------------------------------ stream

    async def Work(
        self, request_iterator: AsyncIterator[leases_pb2.WorkRequest], context: Any
    ) -> AsyncIterator[leases_pb2.WorkResponse]:
        principal = current_principal()
        try:
            first = await anext(request_iterator)
        except StopAsyncIteration:
            return
        if first.WhichOneof("body") != "hello":
            raise InvalidArgument(
                "the first message of a Work stream must be a WorkerHello",
                [FieldViolation("hello", "must be the first message")],
            )
        hello = first.hello
        out = convert.Violations()
        if not hello.worker_id or len(hello.worker_id) > convert.MAX_WORKER_ID_CHARS:
            out.add("hello.worker_id", f"must be 1 to {convert.MAX_WORKER_ID_CHARS} characters")
        if not 1 <= hello.capacity <= MAX_CAPACITY:
            out.add("hello.capacity", f"must be between 1 and {MAX_CAPACITY}")
        out.raise_if_any("malformed WorkerHello")
        job_types = _job_types(hello.job_types, principal.job_types, "hello.job_types")
        session = WorkSession(
            session_id=uuid.uuid4().hex,
            worker_id=hello.worker_id,
            actor=Actor.of(principal),
            job_types=job_types,
            capacity=hello.capacity,
            completer=self._completer,
            ledger=self._ledger,
            dispatcher=self._dispatcher,
        )
        # Drained after 90-100 % of its max age (jittered so a fleet that connected together
        # does not reconnect together): the worker reconnects, and spreads over new replicas.
        max_age = self._settings.work_stream_max_age_s * self._rng.uniform(0.9, 1.0)
        rebalance = asyncio.get_running_loop().call_later(
            max_age, session.drain_from_server, "rebalance"
        )
        ttl = self._settings.lease_ttl_s
        welcome = leases_pb2.ServerWelcome(
            session_id=session.session_id, max_batch=MAX_WORKER_BATCH
        )
        welcome.lease_ttl.FromNanoseconds(round(ttl * 1e9))
        welcome.heartbeat_interval.FromNanoseconds(round(ttl / 3 * 1e9))
        try:
            yield leases_pb2.WorkResponse(welcome=welcome)
            async for message in session.run(request_iterator):
                yield message
        finally:
            rebalance.cancel()

    # ------------------------------------------------------------------ unary

    async def Claim(self, request: leases_pb2.ClaimRequest, context: Any) -> Any:
        principal = current_principal()
        out = convert.Violations()
        if not request.worker_id or len(request.worker_id) > convert.MAX_WORKER_ID_CHARS:
            out.add("worker_id", f"must be 1 to {convert.MAX_WORKER_ID_CHARS} characters")
        max_jobs = request.max_jobs or 1
        if not 1 <= max_jobs <= MAX_CLAIM_JOBS:
            out.add("max_jobs", f"must be between 1 and {MAX_CLAIM_JOBS}")
        wait_s = 0.0
        if request.HasField("wait"):
            wait_s = request.wait.ToNanoseconds() / 1e9
            if not 0 <= wait_s <= MAX_CLAIM_WAIT_S:
                out.add("wait", f"must be between 0 and {MAX_CLAIM_WAIT_S:g} seconds")
        out.raise_if_any("malformed ClaimRequest")
        job_types = _job_types(request.job_types, principal.job_types, "job_types")
        actor = Actor.of(principal)
        wanted = frozenset(job_types)
        woken = asyncio.Event()

        def wake(types: frozenset[str] | None) -> None:
            if types is None or not types.isdisjoint(wanted):
                woken.set()

        # Subscribed before the first claim so a NOTIFY between claim and wait is not lost.
        unsubscribe = self._listener.subscribe(wake)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        try:
            while True:
                woken.clear()
                rows, _, wake_in, _ = await self._dispatcher.claim(
                    actor, [request.worker_id] * max_jobs, job_types
                )
                remaining = deadline - loop.time()
                if rows or remaining <= 0:
                    break
                poll = self._rng.uniform(POLL_MIN_S, POLL_MAX_S)
                if wake_in is not None:
                    poll = min(poll, max(wake_in, 0.01))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, poll)):
                        await woken.wait()
        finally:
            unsubscribe()
        record_claimed(rows, self._settings.lease_ttl_s)
        return leases_pb2.ClaimResponse(assignments=[convert.assignment(r) for r in rows])

    async def _apply(self, kind: Kind, items: list[Any]) -> list[leases_pb2.ResultAck]:
        outcomes = await self._completer.apply(Actor.of(current_principal()), kind, items)
        return [convert.ack(o, kind) for o in outcomes]

    async def Heartbeat(self, request: leases_pb2.HeartbeatRequest, context: Any) -> Any:
        _check_size(len(request.heartbeats), "heartbeats")
        out = convert.Violations()
        items = [
            convert.heartbeat(h, f"heartbeats[{i}]", out) for i, h in enumerate(request.heartbeats)
        ]
        out.raise_if_any("malformed HeartbeatRequest")
        outcomes = await self._completer.apply(Actor.of(current_principal()), Kind.HEARTBEAT, items)
        return leases_pb2.HeartbeatResponse(
            acks=[convert.ack(o, Kind.HEARTBEAT) for o in outcomes],
            cancel_job_ids=[str(o.job_id) for o in outcomes if o.cancel_reason],
        )

    async def Complete(self, request: leases_pb2.CompleteRequest, context: Any) -> Any:
        _check_size(len(request.completions), "completions")
        out = convert.Violations()
        items = [
            convert.completion(c, f"completions[{i}]", out)
            for i, c in enumerate(request.completions)
        ]
        out.raise_if_any("malformed CompleteRequest")
        return leases_pb2.CompleteResponse(acks=await self._apply(Kind.COMPLETION, items))

    async def Fail(self, request: leases_pb2.FailRequest, context: Any) -> Any:
        _check_size(len(request.failures), "failures")
        out = convert.Violations()
        items = [convert.failure(f, f"failures[{i}]", out) for i, f in enumerate(request.failures)]
        out.raise_if_any("malformed FailRequest")
        return leases_pb2.FailResponse(acks=await self._apply(Kind.FAILURE, items))

    async def RecordArtifacts(
        self, request: leases_pb2.RecordArtifactsRequest, context: Any
    ) -> Any:
        _check_size(len(request.artifacts), "artifacts")
        out = convert.Violations()
        items = [
            convert.artifact(a, f"artifacts[{i}]", out) for i, a in enumerate(request.artifacts)
        ]
        out.raise_if_any("malformed RecordArtifactsRequest")
        return leases_pb2.RecordArtifactsResponse(acks=await self._apply(Kind.ARTIFACT, items))
