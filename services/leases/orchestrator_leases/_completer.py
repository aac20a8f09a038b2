"""Completer: batches every write on leases into one statement per kind per flush.

Sessions and unary calls submit heartbeats, progress, artifacts, completions and failures;
the completer gathers them for ``ORCH_COMPLETER_FLUSH_MS`` (or until ``FLUSH_ITEMS`` are
queued) and applies each kind as one ledger call (one statement) per actor, in the order
heartbeats → progress → artifacts → completions → failures, so an artifact recorded before
a completion lands first. Flushes run one after another: while one flush is in the
database the next one fills up, so batches grow with load (River's completer idea).

Rate-limit feedback: with a limiter, the applied completions and failures of each flush are
handed to it (:meth:`LeaseLimiter.observe`, no I/O); its own task updates the buckets, so
acks never wait for Redis.

Leases ended (completions and failures committed) are signalled through
``on_leases_ended`` (the dispatcher's :meth:`Dispatcher.leases_ended`): a ``max_active`` cap
that was full may have room now, which the session's slot credit (sent before the commit)
cannot tell.

Run durations (``orch_job_run_duration_seconds``): the completion statement returns each
applied job's type and run time (lease to finish, database clock), observed as the flush
ends. (They used to be read back in a statement of their own after every flush, which cost
PostgreSQL more than the completion itself on a small table.)

Transient failures: a flush that the database rolled back (deadlock, serialization failure:
:class:`Aborted`) or could not reach (:class:`Unavailable`: a restart, a failover) is tried
again with capped, jittered backoff for up to ``RETRY_FOR_S``, while the next batch fills
and backpressure holds the workers. Every write here is fenced by its lease id, so applying
one twice is harmless (a repeated completion is acknowledged again). Before, the error failed
the Work streams waiting for that flush and their jobs ran again (found by ``make chaos``:
two leases replicas settling one run deadlocked).

Backpressure: at most ``MAX_BACKLOG_ITEMS`` wait for a flush; :meth:`Completer.submit`
awaits room beyond that, which stalls the stream reader that called it and, through HTTP/2
flow control, the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator_core import Aborted, Unavailable
from orchestrator_leases import _metrics as metrics
from orchestrator_leases._actor import Actor
from orchestrator_leases._ratelimit import LeaseLimiter
from orchestrator_pg import LeaseLedger, Outcome

FLUSH_ITEMS = 500
# How long a flush retries a transient database failure before it gives up (the sessions
# waiting for it then fail their streams): well inside the default 30 s lease.
RETRY_FOR_S = 15.0
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0
MAX_BACKLOG_ITEMS = 10_000

_log = logging.getLogger("orchestrator_leases.completer")


class Kind(enum.IntEnum):
    """Kinds of writes, in the order a flush applies them (values are AckKind numbers)."""

    HEARTBEAT = 1
    PROGRESS = 2
    ARTIFACT = 3
    COMPLETION = 4
    FAILURE = 5


@dataclass
class _Chunk:
    items: Sequence[Any]
    future: asyncio.Future[list[Outcome]]


@dataclass
class _Pending:
    chunks: list[_Chunk] = field(default_factory=list)


class Completer:
    """Batches writes on leases.

    Args:
        ledger: the lease ledger.
        lease_ttl_s: lease length that heartbeats extend to.
        flush_ms: linger time before a flush (0: flush as soon as the loop runs).
        flush_items: a flush starts at once when this many items are queued.
        max_backlog: items queued beyond which :meth:`submit` waits.
        limiter: receives the applied results for rate-limit feedback (None: none).
        retry_for_s: how long a flush retries a transient database failure.
        rng: jitter of the retry pauses (seed it in tests).
    """

    def __init__(
        self,
        ledger: LeaseLedger,
        *,
        lease_ttl_s: float,
        flush_ms: float,
        flush_items: int = FLUSH_ITEMS,
        max_backlog: int = MAX_BACKLOG_ITEMS,
        limiter: LeaseLimiter | None = None,
        retry_for_s: float = RETRY_FOR_S,
        rng: random.Random | None = None,
    ) -> None:
        self._ledger = ledger
        self._retry_for_s = retry_for_s
        self._rng = rng or random.Random()
        self._limiter = limiter
        # Called after a flush committed completions or failures (see the module docstring).
        self.on_leases_ended: Callable[[], None] | None = None
        self._ttl_s = lease_ttl_s
        self._flush_s = flush_ms / 1000
        self._flush_items = flush_items
        self._max_backlog = max_backlog
        self._pending: dict[tuple[Kind, Actor], _Pending] = {}
        self._count = 0
        self._ready = asyncio.Event()
        self._full = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    async def submit(
        self, actor: Actor, kind: Kind, items: Sequence[Any]
    ) -> asyncio.Future[list[Outcome]]:
        """Queues ``items`` of one kind; the future resolves to one outcome per item (in
        order) after the flush that applies them, or raises what the flush raised."""
        while self._count >= self._max_backlog:
            self._room.clear()
            await self._room.wait()
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        if not items:
            future.set_result([])
            return future
        self._pending.setdefault((kind, actor), _Pending()).chunks.append(_Chunk(items, future))
        self._count += len(items)
        self._ready.set()
        if self._count >= self._flush_items:
            self._full.set()
        return future

    async def apply(self, actor: Actor, kind: Kind, items: Sequence[Any]) -> list[Outcome]:
        """Submits and waits for the outcomes."""
        return await (await self.submit(actor, kind, items))

    async def run(self) -> None:
        """Flushes until cancelled; on cancel, cancels what is queued or being flushed (a
        session awaiting its reports must not wait for a flush that will never end)."""
        batch: dict[tuple[Kind, Actor], _Pending] = {}
        try:
            while True:
                await self._ready.wait()
                if self._count < self._flush_items and self._flush_s > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._flush_s):
                            await self._full.wait()
                batch, self._pending = self._pending, {}
                self._count = 0
                self._ready.clear()
                self._full.clear()
                self._room.set()
                await self._flush(batch)
        finally:
            for pending in [*batch.values(), *self._pending.values()]:
                for chunk in pending.chunks:
                    if not chunk.future.done():
                        chunk.future.cancel()

    async def _flush(self, batch: dict[tuple[Kind, Actor], _Pending]) -> None:
        for (kind, actor), pending in sorted(batch.items(), key=lambda kv: kv[0][0]):
            items = [item for chunk in pending.chunks for item in chunk.items]
            try:
                outcomes = await self._apply_retrying(kind, actor, items)
            except Exception as exc:
                _log.exception("completer flush of %d %s failed", len(items), kind.name.lower())
                for chunk in pending.chunks:
                    if not chunk.future.done():
                        chunk.future.set_exception(exc)
                continue
            start = 0
            for chunk in pending.chunks:
                end = start + len(chunk.items)
                if not chunk.future.done():
                    chunk.future.set_result(outcomes[start:end])
                start = end

    async def _apply_retrying(self, kind: Kind, actor: Actor, items: list[Any]) -> list[Outcome]:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._retry_for_s
        pause = RETRY_FIRST_S
        while True:
            try:
                return await self._apply(kind, actor, items)
            except (Aborted, Unavailable) as exc:
                if loop.time() + pause > give_up:
                    raise
                metrics.COMPLETER_RETRIES.labels(type(exc).__name__.lower()).inc()
                _log.warning(
                    "completer flush of %d %s: %s; retrying in %.2f s",
                    len(items),
                    kind.name.lower(),
                    exc,
                    pause,
                )
                await asyncio.sleep(pause * self._rng.uniform(0.5, 1.0))
                pause = min(RETRY_MAX_S, pause * 2)

    async def _apply(self, kind: Kind, actor: Actor, items: list[Any]) -> list[Outcome]:
        ctx = actor.ctx()
        ledger = self._ledger
        if kind is Kind.HEARTBEAT:
            return await ledger.lease_extend_many(
                ctx, items, tenants=actor.tenants, lease_ttl_s=self._ttl_s
            )
        if kind is Kind.PROGRESS:
            return await ledger.job_progress_many(ctx, items, tenants=actor.tenants)
        if kind is Kind.ARTIFACT:
            return await ledger.artifact_record_many(ctx, items, tenants=actor.tenants)
        if kind is Kind.COMPLETION:
            outcomes = await ledger.job_complete_many(ctx, items, tenants=actor.tenants)
            # A resent completion that was already applied is acknowledged again but is
            # not a second completion: not counted, timed or fed to the limiter twice.
            fresh = [o for o in outcomes if o.ok and o.new_state and not o.repeated]
            done = [o.job_id for o in fresh]
            metrics.LEASES_COMPLETED.inc(len(done))
            for o in fresh:
                if o.run_s is not None:
                    metrics.JOB_RUN_DURATION_SECONDS.labels(o.job_type).observe(max(0.0, o.run_s))
            if self._limiter is not None:
                self._limiter.observe(actor, done, ())
            if done and self.on_leases_ended is not None:
                self.on_leases_ended()
            return outcomes
        outcomes = await ledger.job_fail_many(ctx, items, tenants=actor.tenants)
        applied = [f for f, o in zip(items, outcomes, strict=True) if o.ok]
        for error_class, n in Counter(f.error_class for f in applied).items():
            metrics.LEASES_FAILED.labels(error_class).inc(n)
        if self._limiter is not None:
            self._limiter.observe(actor, (), applied)
        if applied and self.on_leases_ended is not None:
            self.on_leases_ended()
        return outcomes
