"""The capacity bound of the Work stream, as a property: whatever the backlog, the claim and
completion latencies, the claim batch and the workers' speeds, a session never holds more
leases that are not yet ended in the ledger than the capacity it declared.

The real WorkSession, Dispatcher and Completer run against an in-memory ledger whose claims
and writes take a random number of event-loop turns, and fake workers that answer each
assignment after a random number of turns; the ledger checks the invariant at every lease it
hands out. Latencies are counted in loop turns, not seconds, so a schedule is replayed
exactly and the 1,000 generated schedules take about a minute.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator_leases._actor import Actor
from orchestrator_leases._completer import Completer
from orchestrator_leases._dispatcher import Dispatcher
from orchestrator_leases._session import WorkSession
from orchestrator_pg import Outcome
from orchestrator_pg._leasing import LimitedClaim
from stella.orchestrator.v1 import leases_pb2
from tests.unit.leases._rows import lease_row

JOB_TYPE = "feed.fetch"
ACTOR = Actor("acme", "fleet", ("orch:work",), ("acme",))
NOW = datetime(2030, 1, 1, tzinfo=UTC)


async def _turns(rng: random.Random, most: int) -> None:
    for _ in range(rng.randint(0, most)):
        await asyncio.sleep(0)


class _Ledger:
    """Ready jobs, leases per worker, and the invariant, checked at every lease handed out."""

    def __init__(self, backlog: int, capacity: dict[str, int], rng: random.Random, lag: int):
        self.ready = self.backlog = backlog
        self.capacity = capacity
        self.rng = rng
        self.lag = lag
        self.leased: dict[str, set[uuid.UUID]] = defaultdict(set)
        self.owner: dict[uuid.UUID, str] = {}
        self.done = 0
        self.peak: dict[str, int] = defaultdict(int)
        self.violations: list[tuple[str, int, int]] = []
        self.all_done = asyncio.Event()
        if backlog == 0:
            self.all_done.set()

    async def job_claim_admitted(
        self, ctx: Any, *, worker_ids: list[str], **_: Any
    ) -> LimitedClaim:
        await _turns(self.rng, self.lag)
        take = min(self.ready, len(worker_ids))
        self.ready -= take
        rows = []
        for slot in range(1, take + 1):
            worker = worker_ids[slot - 1]
            job_id = uuid.uuid4()
            self.leased[worker].add(job_id)
            self.owner[job_id] = worker
            held = len(self.leased[worker])
            self.peak[worker] = max(self.peak[worker], held)
            if held > self.capacity[worker]:  # an assert here would be logged by the dispatcher
                self.violations.append((worker, held, self.capacity[worker]))
                self.all_done.set()
            rows.append(
                lease_row(id=job_id, slot=slot, ready_at=NOW, host="", lease_expires_at=NOW)
            )
        return LimitedClaim(rows, [], NOW)

    async def job_complete_many(self, ctx: Any, items: list[Any], *, tenants: Any) -> list[Outcome]:
        await _turns(self.rng, self.lag)
        for item in items:
            self.leased[self.owner.pop(item.job_id)].discard(item.job_id)
            self.done += 1
        if self.done == self.backlog:
            self.all_done.set()
        return [Outcome(i.job_id, i.lease_id, True, new_state="succeeded") for i in items]

    async def job_fail_many(self, ctx: Any, items: list[Any], *, tenants: Any) -> list[Outcome]:
        return await self.job_complete_many(ctx, items, tenants=tenants)

    async def lease_release_many(self, ctx: Any, held: list[Any], *, message: str) -> list[Outcome]:
        return []


async def _worker(session: WorkSession, rng: random.Random, slowness: int, fail_every: int) -> None:
    """Answers every assignment after a few turns: a completion, or now and then a failure."""
    requests: asyncio.Queue[leases_pb2.WorkRequest | None] = asyncio.Queue()

    async def stream() -> AsyncIterator[leases_pb2.WorkRequest]:
        while (request := await requests.get()) is not None:
            yield request

    async def answer(assignment: leases_pb2.Assignment, n: int) -> None:
        await _turns(rng, slowness)
        ids = {"job_id": assignment.job_id, "lease_id": assignment.lease_id}
        if fail_every and n % fail_every == 0:
            batch = leases_pb2.WorkerBatch(failures=[leases_pb2.Failure(**ids)])
        else:
            batch = leases_pb2.WorkerBatch(completions=[leases_pb2.Completion(**ids)])
        requests.put_nowait(leases_pb2.WorkRequest(batch=batch))

    tasks = []
    n = 0
    try:
        async for response in session.run(stream()):
            for assignment in response.assignments.assignments:
                n += 1
                tasks.append(asyncio.create_task(answer(assignment, n)))
    finally:
        for task in tasks:
            task.cancel()


async def _burn_down(
    backlog: int,
    capacities: list[int],
    claim_batch: int,
    lag: int,
    slowness: list[int],
    flush_ms: float,
    fail_every: int,
    seed: int,
) -> _Ledger:
    rng = random.Random(seed)
    workers = [f"w{i}" for i in range(len(capacities))]
    ledger = _Ledger(backlog, dict(zip(workers, capacities, strict=True)), rng, lag)
    completer = Completer(ledger, lease_ttl_s=30, flush_ms=flush_ms, flush_items=rng.randint(1, 50))  # type: ignore[arg-type]
    dispatcher = Dispatcher(ledger, lease_ttl_s=30, claim_batch=claim_batch, rng=rng)  # type: ignore[arg-type]
    background = [asyncio.create_task(completer.run()), asyncio.create_task(dispatcher.run())]
    sessions = [
        WorkSession(
            session_id=f"s-{w}",
            worker_id=w,
            actor=ACTOR,
            job_types=(JOB_TYPE,),
            capacity=c,
            completer=completer,
            ledger=ledger,  # type: ignore[arg-type]
            dispatcher=dispatcher,
        )
        for w, c in zip(workers, capacities, strict=True)
    ]
    running = [
        asyncio.create_task(_worker(s, rng, slow, fail_every))
        for s, slow in zip(sessions, slowness, strict=True)
    ]
    try:
        async with asyncio.timeout(60):
            await ledger.all_done.wait()
    finally:
        for task in [*running, *background]:
            task.cancel()
        await asyncio.gather(*running, *background, return_exceptions=True)
    return ledger


@pytest.mark.timeout(900)  # about a minute here; a loaded CI machine takes longer
@settings(max_examples=1000, deadline=None)
@given(
    backlog=st.integers(0, 400),
    capacities=st.lists(st.integers(1, 20), min_size=1, max_size=4),
    claim_batch=st.integers(1, 100),
    lag=st.integers(0, 30),
    slowness=st.lists(st.integers(0, 30), min_size=4, max_size=4),
    flush_ms=st.sampled_from([0.0, 0.0, 1.0]),
    fail_every=st.integers(0, 7),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_session_never_holds_more_unended_leases_than_its_capacity(
    backlog: int,
    capacities: list[int],
    claim_batch: int,
    lag: int,
    slowness: list[int],
    flush_ms: float,
    fail_every: int,
    seed: int,
) -> None:
    ledger = asyncio.run(
        _burn_down(
            backlog,
            capacities,
            claim_batch,
            lag,
            slowness[: len(capacities)],
            flush_ms,
            fail_every,
            seed,
        )
    )
    # the invariant (checked at each lease) held throughout, and every job ran once
    assert ledger.violations == []
    assert ledger.done == backlog
    assert not any(ledger.leased.values())
    assert all(ledger.peak[w] <= c for w, c in ledger.capacity.items())
