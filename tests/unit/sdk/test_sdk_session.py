"""The Work-stream session against an in-memory fake of the stream (no sockets): Hello,
batching, heartbeats at the Welcome's interval, lease_lost and CancelJobs cancel handlers,
concurrency is never exceeded, drain finishes handlers, a broken stream cancels them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2

from stella.orchestrator.v1 import common_pb2, leases_pb2
from stella_orchestrator.worker import (
    ParseError,
    RPCError,
    Worker,
    artifact,
    heartbeat,
    json_digest,
    progress,
)
from stella_orchestrator.worker._session import Session


class FakeCall:
    """In-memory stand-in for the grpc.aio stream-stream call."""

    def __init__(self) -> None:
        self.to_worker: asyncio.Queue[Any] = asyncio.Queue()
        self.from_worker: asyncio.Queue[leases_pb2.WorkRequest] = asyncio.Queue()
        self.half_closed = False
        self.canceled = False

    async def write(self, request: leases_pb2.WorkRequest) -> None:
        assert not self.half_closed
        self.from_worker.put_nowait(request)

    async def read(self) -> Any:
        item = await self.to_worker.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def done_writing(self) -> None:
        self.half_closed = True

    def cancel(self) -> bool:
        self.canceled = True
        return True

    async def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.OK

    async def details(self) -> str:
        return ""

    async def trailing_metadata(self) -> tuple:
        return ()

    # --- server side helpers
    def push(self, **body: Any) -> None:
        self.to_worker.put_nowait(leases_pb2.WorkResponse(**body))

    def end(self) -> None:
        self.to_worker.put_nowait(grpc.aio.EOF)

    async def next_batch(self, wait_s: float = 2.0) -> leases_pb2.WorkerBatch:
        while True:
            request = await asyncio.wait_for(self.from_worker.get(), wait_s)
            if request.WhichOneof("body") == "batch":
                return request.batch

    async def next_batch_with(self, field: str, wait_s: float = 2.0) -> leases_pb2.WorkerBatch:
        """The next batch whose ``field`` is non-empty (heartbeats may come in between)."""
        while True:
            batch = await self.next_batch(wait_s)
            if getattr(batch, field):
                return batch

    async def next_request(self, wait_s: float = 2.0) -> leases_pb2.WorkRequest:
        return await asyncio.wait_for(self.from_worker.get(), wait_s)


def welcome(
    ttl_s: float = 3.0, hb_s: float = 0.1, max_batch: int = 100
) -> leases_pb2.ServerWelcome:
    return leases_pb2.ServerWelcome(
        session_id="s1",
        lease_ttl=duration_pb2.Duration(nanos=0, seconds=int(ttl_s)),
        heartbeat_interval=duration_pb2.Duration(nanos=int(hb_s * 1e9)),
        max_batch=max_batch,
    )


def assignment(i: int, job_type: str = "t", **payload: Any) -> leases_pb2.Assignment:
    a = leases_pb2.Assignment(
        job_id=f"job-{i}", lease_id=f"lease-{i}", job_type=job_type, attempt=1, max_attempts=3
    )
    a.payload.update(payload)
    return a


def ack(
    job_id: str, kind: int, ok: bool = True, reason: str = "", lease: str = ""
) -> leases_pb2.ResultAck:
    return leases_pb2.ResultAck(
        job_id=job_id,
        lease_id=lease or job_id.replace("job", "lease"),
        ok=ok,
        error_reason=reason,
        kind=kind,
    )


@contextlib.asynccontextmanager
async def session(
    worker: Worker, ttl_s: float = 3.0, hb_s: float = 0.1
) -> AsyncIterator[tuple[FakeCall, asyncio.Task[str], leases_pb2.WorkerHello]]:
    worker._stop_event = asyncio.Event()
    call = FakeCall()
    s = Session(worker, call)
    worker._session = s
    task = asyncio.create_task(s.run())
    hello = (await call.next_request()).hello
    call.push(welcome=welcome(ttl_s, hb_s))
    try:
        yield call, task, hello
    finally:
        if not task.done():
            worker.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)


def make_worker(**kwargs: Any) -> Worker:
    kwargs.setdefault("token", "t0k3n")
    kwargs.setdefault("worker_id", "w-1")
    return Worker("fake:1", **kwargs)


async def test_hello_and_completion_with_digest() -> None:
    worker = make_worker(concurrency=4, labels={"pool": "a"})

    @worker.handler("t")
    async def handle(job):
        return {"echo": job.payload["n"], "z": [1.5, None]}

    async with session(worker) as (call, _, hello):
        assert (hello.worker_id, list(hello.job_types), hello.capacity, hello.sdk) == (
            "w-1",
            ["t"],
            4,
            "python",
        )
        assert dict(hello.labels) == {"pool": "a"}
        call.push(assignments=leases_pb2.AssignmentBatch(assignments=[assignment(1, n=7)]))
        batch = await call.next_batch_with("completions")
        (completion,) = batch.completions
        assert (completion.job_id, completion.lease_id) == ("job-1", "lease-1")
        assert completion.result_digest == json_digest({"echo": 7, "z": [1.5, None]})
        assert dict(completion.result)["echo"] == 7


async def test_many_results_share_messages_and_respect_max_batch() -> None:
    worker = make_worker(concurrency=50, max_batch_delay_s=0.02)

    @worker.handler("t")
    async def handle(job):
        return None

    async with session(worker) as (call, _, _hello):
        call.push(welcome=welcome(max_batch=20))
        await asyncio.sleep(0.01)
        call.push(
            assignments=leases_pb2.AssignmentBatch(assignments=[assignment(i) for i in range(50)])
        )
        seen: list[str] = []
        messages = 0
        while len(seen) < 50:
            batch = await call.next_batch()
            assert len(batch.completions) <= 20
            assert all(c.result_digest == "" for c in batch.completions)
            seen += [c.job_id for c in batch.completions]
            messages += 1
        assert sorted(seen) == sorted(f"job-{i}" for i in range(50))
        assert messages <= 5


async def test_failures_carry_the_class() -> None:
    worker = make_worker()

    @worker.handler("t")
    async def handle(job):
        if job.payload["n"] == 1:
            raise ParseError("bad xml")
        raise ZeroDivisionError("oops")

    async with session(worker) as (call, _, _hello):
        call.push(
            assignments=leases_pb2.AssignmentBatch(
                assignments=[assignment(1, n=1), assignment(2, n=2)]
            )
        )
        failures: dict[str, leases_pb2.Failure] = {}
        while len(failures) < 2:
            for f in (await call.next_batch()).failures:
                failures[f.job_id] = f
        assert failures["job-1"].error.error_class == common_pb2.ERROR_CLASS_PARSE_ERROR
        assert not failures["job-1"].error.retryable
        assert failures["job-2"].error.error_class == common_pb2.ERROR_CLASS_INTERNAL
        assert failures["job-2"].error.retryable
        assert "ZeroDivisionError" in failures["job-2"].error.message


async def test_heartbeats_follow_the_welcome_interval_and_carry_progress() -> None:
    worker = make_worker()
    release = asyncio.Event()

    @worker.handler("t")
    async def handle(job):
        heartbeat(30, "halfway-ish")
        progress(40, "page 4")
        await release.wait()
        return {}

    async with session(worker, hb_s=0.1) as (call, _, _hello):
        call.push(assignments=leases_pb2.AssignmentBatch(assignments=[assignment(1)]))
        got_progress = None
        heartbeats = 0
        loop = asyncio.get_running_loop()
        start = loop.time()
        while loop.time() - start < 0.55:
            batch = await call.next_batch()
            for p in batch.progress:
                got_progress = p.progress
            for hb in batch.heartbeats:
                heartbeats += 1
                assert hb.lease_id == "lease-1"
                if hb.HasField("progress"):
                    got_progress = hb.progress
                call.push(
                    results=leases_pb2.ResultBatch(
                        acks=[ack("job-1", leases_pb2.ACK_KIND_HEARTBEAT)]
                    )
                )
        assert 3 <= heartbeats <= 7
        assert got_progress is not None
        assert (got_progress.percent, got_progress.message) == (40, "page 4")
        release.set()
        assert (await call.next_batch_with("completions")).completions


@pytest.mark.parametrize("how", ["lease_lost", "cancel"])
async def test_lost_lease_or_cancel_cancels_the_handler_and_drops_the_result(how: str) -> None:
    worker = make_worker()
    started, observed = asyncio.Event(), asyncio.Event()

    @worker.handler("t")
    async def handle(job):
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            observed.set()
            raise
        return {}

    async with session(worker) as (call, _, _hello):
        call.push(assignments=leases_pb2.AssignmentBatch(assignments=[assignment(1)]))
        await asyncio.wait_for(started.wait(), 2)
        if how == "lease_lost":
            call.push(
                results=leases_pb2.ResultBatch(
                    acks=[
                        ack("job-1", leases_pb2.ACK_KIND_HEARTBEAT, ok=False, reason="lease_lost")
                    ]
                )
            )
        else:
            call.push(cancel=leases_pb2.CancelJobs(job_ids=["job-1"], reason="user_canceled"))
        await asyncio.wait_for(observed.wait(), 2)
        batch = await call.next_batch_with("credits")
        assert not batch.completions
        assert not batch.failures
        assert batch.credits == 1
        assert worker.stats.canceled == 1


async def test_handler_that_swallows_cancel_still_has_its_result_dropped() -> None:
    worker = make_worker()
    started = asyncio.Event()

    @worker.handler("t")
    async def handle(job):
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)
        return {"late": True}

    async with session(worker) as (call, _, _hello):
        call.push(assignments=leases_pb2.AssignmentBatch(assignments=[assignment(1)]))
        await asyncio.wait_for(started.wait(), 2)
        call.push(cancel=leases_pb2.CancelJobs(job_ids=["job-1"]))
        batch = await call.next_batch_with("credits")
        assert not batch.completions
        assert batch.credits == 1


async def test_never_more_than_concurrency_handlers() -> None:
    worker = make_worker(concurrency=3)
    running = 0
    peak = 0

    @worker.handler("t")
    async def handle(job):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return None

    async with session(worker) as (call, _, _hello):
        # A misbehaving server pushes more than the capacity: the extra leases wait.
        call.push(
            assignments=leases_pb2.AssignmentBatch(assignments=[assignment(i) for i in range(10)])
        )
        done = 0
        while done < 10:
            done += len((await call.next_batch()).completions)
        assert peak == 3


async def test_artifacts_ride_with_the_completion_when_still_pending() -> None:
    worker = make_worker(max_batch_delay_s=0.05)

    @worker.handler("t")
    async def handle(job):
        artifact("out.json", b"{}", media_type="application/json")
        return {"ok": True}

    async with session(worker) as (call, _, _hello):
        call.push(assignments=leases_pb2.AssignmentBatch(assignments=[assignment(1)]))
        batch = await call.next_batch_with("completions")
        assert not batch.artifacts
        (completion,) = batch.completions
        (art,) = completion.artifacts
        assert (art.name, art.job_id, art.lease_id, art.size_bytes) == (
            "out.json",
            "job-1",
            "lease-1",
            2,
        )
        assert (
            art.digest == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        )


async def test_drain_finishes_in_flight_then_half_closes() -> None:
    worker = make_worker()
    started = asyncio.Event()
    finished = []

    @worker.handler("t")
    async def handle(job):
        started.set()
        await asyncio.sleep(0.2)
        finished.append(job.id)
        return {"n": 1}

    async with session(worker) as (call, task, _hello):
        call.push(assignments=leases_pb2.AssignmentBatch(assignments=[assignment(1)]))
        await asyncio.wait_for(started.wait(), 2)
        worker.request_drain("test")
        request = await call.next_request()
        assert request.drain.reason == "test"
        batch = await call.next_batch_with("completions")
        assert [c.job_id for c in batch.completions] == ["job-1"]
        assert finished == ["job-1"]
        await asyncio.sleep(0.05)
        assert not call.half_closed  # waits for the ack first
        call.push(
            results=leases_pb2.ResultBatch(acks=[ack("job-1", leases_pb2.ACK_KIND_COMPLETION)])
        )
        for _ in range(100):
            if call.half_closed:
                break
            await asyncio.sleep(0.01)
        assert call.half_closed
        call.end()
        assert await asyncio.wait_for(task, 2) == "drained"


async def test_drain_timeout_fails_stragglers_as_canceled() -> None:
    worker = make_worker(drain_timeout_s=0.1)
    started = asyncio.Event()

    @worker.handler("t")
    async def handle(job):
        started.set()
        await asyncio.sleep(30)

    async with session(worker) as (call, _task, _hello):
        call.push(assignments=leases_pb2.AssignmentBatch(assignments=[assignment(1)]))
        await asyncio.wait_for(started.wait(), 2)
        worker.request_drain()
        batch = await call.next_batch_with("failures")
        (failure,) = batch.failures
        assert failure.error.error_class == common_pb2.ERROR_CLASS_CANCELED
        assert failure.error.retryable


async def test_broken_stream_cancels_handlers_and_raises_typed_error() -> None:
    worker = make_worker()
    started, observed = asyncio.Event(), asyncio.Event()

    @worker.handler("t")
    async def handle(job):
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            observed.set()
            raise

    async with session(worker) as (call, task, _hello):
        call.push(assignments=leases_pb2.AssignmentBatch(assignments=[assignment(1)]))
        await asyncio.wait_for(started.wait(), 2)
        call.to_worker.put_nowait(
            grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "gone"
            )
        )
        with pytest.raises(RPCError) as caught:
            await asyncio.wait_for(task, 5)
        assert caught.value.code is grpc.StatusCode.UNAVAILABLE
        assert observed.is_set()
        assert call.canceled


async def test_server_drain_finishes_work_then_reports_server_drained() -> None:
    worker = make_worker()
    started = asyncio.Event()

    @worker.handler("t")
    async def handle(job):
        started.set()
        await asyncio.sleep(0.05)
        return None

    async with session(worker) as (call, task, _hello):
        call.push(assignments=leases_pb2.AssignmentBatch(assignments=[assignment(1)]))
        await asyncio.wait_for(started.wait(), 2)
        call.push(drain=leases_pb2.ServerDrain(reason="deploy"))
        assert (await call.next_batch_with("completions")).completions
        call.push(
            results=leases_pb2.ResultBatch(acks=[ack("job-1", leases_pb2.ACK_KIND_COMPLETION)])
        )
        await asyncio.sleep(0.05)
        call.end()
        assert await asyncio.wait_for(task, 2) == "server_drained"


def test_registration_rules() -> None:
    worker = make_worker()

    @worker.handler("a")
    async def a(job):
        return None

    with pytest.raises(ValueError, match="already registered"):
        worker.add_handler("a", a)
    with pytest.raises(TypeError, match="async"):
        worker.add_handler("b", lambda job: None)  # type: ignore[arg-type,return-value]
    assert worker.job_types == ["a"]
    with pytest.raises(ValueError, match="concurrency"):
        make_worker(concurrency=0)
    assert make_worker(worker_id=None).worker_id.count("-") >= 2
    assert make_worker(tenant="acme", token=lambda: "abc")._metadata() == (
        ("authorization", "Bearer abc"),
        ("x-stella-tenant", "acme"),
    )


async def test_run_validates_job_types() -> None:
    worker = make_worker(job_types=["a", "b"])

    @worker.handler("a")
    async def a(job):
        return None

    with pytest.raises(ValueError, match="without a handler: b"):
        await worker.run()
    with pytest.raises(ValueError, match="at least one handler"):
        await make_worker().run()


async def test_lease_running_out_without_acked_heartbeat_cancels_the_handler() -> None:
    worker = make_worker()
    started, observed = asyncio.Event(), asyncio.Event()

    @worker.handler("t")
    async def handle(job):
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            observed.set()
            raise

    async with session(worker, ttl_s=1.0, hb_s=0.1) as (call, _task, _hello):
        call.push(assignments=leases_pb2.AssignmentBatch(assignments=[assignment(1)]))
        await asyncio.wait_for(started.wait(), 2)
        await call.next_batch_with("heartbeats")
        # One acknowledged heartbeat proves the server acks them; then the acks stop.
        call.push(
            results=leases_pb2.ResultBatch(acks=[ack("job-1", leases_pb2.ACK_KIND_HEARTBEAT)])
        )
        await asyncio.wait_for(observed.wait(), 3)
        assert worker.stats.canceled == 1
