"""The gateway's shared event streams against a scripted upstream.

The upstream here stands in for EventStreamService.StreamEvents so that interruptions and
refusals happen at exact points; tests/gateway/test_gateway_streams.py runs the same code
against the real scheduler.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from orchestrator_gateway import _event_feeds as feeds
from orchestrator_gateway._event_feeds import DedicatedFeed, EventHub, SharedFeed, SlowClient
from stella.orchestrator.v1 import events_pb2

KEY = ("acme", "", "", "", ())


def _error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "scripted")


class Upstream:
    """A ledger of events and the StreamEvents calls made against it. ``fail[n]`` makes
    the n-th call (0-based) raise that code after sending ``after`` event messages."""

    def __init__(self) -> None:
        self.ledger: list[events_pb2.Event] = []
        self.changed = asyncio.Condition()
        self.calls: list[events_pb2.StreamEventsRequest] = []
        self.cancelled = 0
        self.fail: dict[int, tuple[int, grpc.StatusCode]] = {}

    @property
    def events(self) -> Upstream:
        return self

    async def append(self, n: int) -> None:
        async with self.changed:
            for _ in range(n):
                seq = len(self.ledger) + 1
                self.ledger.append(events_pb2.Event(seq=seq, type="job.succeeded"))
            self.changed.notify_all()

    def StreamEvents(self, request: Any, metadata: Any) -> Call:
        self.calls.append(request)
        return Call(self, request, self.fail.get(len(self.calls) - 1))


class Call:
    def __init__(
        self, up: Upstream, request: Any, fail: tuple[int, grpc.StatusCode] | None
    ) -> None:
        self.up, self.request, self.fail = up, request, fail
        self.messages = self._messages()

    def cancel(self) -> None:
        self.up.cancelled += 1

    async def read(self) -> Any:
        return await self.messages.__anext__()

    def __aiter__(self) -> Any:
        return self.messages

    async def _messages(self) -> Any:
        head = len(self.up.ledger)
        after = head if self.request.after_seq == -1 else self.request.after_seq
        yield events_pb2.StreamEventsResponse(keep_alive=True, head_seq=head)
        sent = 0
        while True:
            if self.fail is not None and sent >= self.fail[0]:
                raise _error(self.fail[1])
            async with self.up.changed:
                await self.up.changed.wait_for(lambda n=after: len(self.up.ledger) > n)
                batch = self.up.ledger[after : after + 3]
            after = batch[-1].seq
            sent += 1
            yield events_pb2.StreamEventsResponse(events=batch, head_seq=after)


async def _take(feed: Any, n: int) -> list[int]:
    seqs: list[int] = []
    async with asyncio.timeout(10):
        async for message in feed.messages():
            seqs += [e.seq for e in message.events]
            if len(seqs) >= n:
                return seqs
    return seqs


@pytest.fixture
def up() -> Upstream:
    return Upstream()


async def test_clients_of_one_key_share_one_upstream_call(up: Upstream) -> None:
    hub = EventHub(up, buffer=100)  # type: ignore[arg-type]
    await up.append(5)
    a = await hub.subscribe(KEY, -1, ())
    b = await hub.subscribe(KEY, -1, ())
    other = await hub.subscribe(("globex", "", "", "", ()), -1, ())
    assert len(up.calls) == 2  # one per tenant
    assert a.head_seq == b.head_seq == 5
    await up.append(7)
    assert await _take(a, 7) == await _take(b, 7) == list(range(6, 13))
    assert isinstance(a, SharedFeed)
    assert a.json(up.ledger[6]) == feeds.event_json(up.ledger[6])
    await hub.aclose()
    assert await _take(other, 100) == list(range(6, 13))  # (the fake ignores the tenant)


async def test_an_interrupted_upstream_resumes_from_its_last_seq(up: Upstream) -> None:
    up.fail[0] = (2, grpc.StatusCode.UNAVAILABLE)  # the first call dies after 2 messages
    hub = EventHub(up, buffer=100)  # type: ignore[arg-type]
    feed = await hub.subscribe(KEY, -1, ())
    await up.append(20)
    assert await _take(feed, 20) == list(range(1, 21))  # no gap, no repeat
    assert [c.after_seq for c in up.calls] == [-1, 6]  # resumed after 2 x 3 events
    await hub.aclose()


async def test_a_refused_upstream_ends_its_clients(up: Upstream) -> None:
    up.fail[0] = (1, grpc.StatusCode.PERMISSION_DENIED)
    hub = EventHub(up, buffer=100)  # type: ignore[arg-type]
    feed = await hub.subscribe(KEY, -1, ())
    await up.append(3)
    assert await _take(feed, 10) == [1, 2, 3]  # then the end
    assert hub.streams == {}


async def test_resume_replays_the_ring_or_gets_a_call_of_its_own(
    up: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "RING_EVENTS", 6)
    hub = EventHub(up, buffer=100)  # type: ignore[arg-type]
    await up.append(2)
    first = await hub.subscribe(KEY, -1, ())  # covers seqs above 2
    await up.append(9)
    await _take(first, 9)
    # The ring holds 6..11 (covers above 5): a resume at 7 is served from it, then live.
    resumed = await hub.subscribe(KEY, 7, ())
    assert isinstance(resumed, SharedFeed)
    await up.append(2)
    assert await _take(resumed, 6) == [8, 9, 10, 11, 12, 13]
    # Further back than the ring: a call of its own from there.
    older = await hub.subscribe(KEY, 3, ())
    assert isinstance(older, DedicatedFeed)
    assert up.calls[-1].after_seq == 3
    assert await _take(older, 10) == list(range(4, 14))
    await older.close()
    await hub.aclose()


async def test_a_client_ahead_of_the_stream_gets_nothing_twice(up: Upstream) -> None:
    hub = EventHub(up, buffer=100)  # type: ignore[arg-type]
    await up.append(2)
    await hub.subscribe(KEY, -1, ())
    # Resuming at 5 (it read 3..5 through another replica) before this stream has them.
    ahead = await hub.subscribe(KEY, 5, ())
    await up.append(6)
    assert await _take(ahead, 3) == [6, 7, 8]
    await hub.aclose()


async def test_a_slow_client_is_cut_and_the_others_go_on(up: Upstream) -> None:
    hub = EventHub(up, buffer=3)  # type: ignore[arg-type]
    slow = await hub.subscribe(KEY, -1, ())
    fast = await hub.subscribe(KEY, -1, ())
    reading = asyncio.create_task(_take(fast, 30))
    for _ in range(10):  # a message at a time, so the reading client keeps up
        await up.append(3)
        await asyncio.sleep(0.02)
    assert await reading == list(range(1, 31))
    with pytest.raises(SlowClient):
        await _take(slow, 30)
    stream = hub.streams[KEY]
    assert slow not in stream.feeds
    assert fast in stream.feeds
    await hub.aclose()


async def test_a_stream_without_clients_lingers_then_closes(
    up: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "LINGER_S", 0.2)
    hub = EventHub(up, buffer=100)  # type: ignore[arg-type]
    feed = await hub.subscribe(KEY, -1, ())
    await feed.close()
    again = await hub.subscribe(KEY, -1, ())  # within the linger: the same stream
    assert len(up.calls) == 1
    stream = hub.streams[KEY]
    await again.close()
    async with asyncio.timeout(10):  # closed by the linger timer
        await asyncio.gather(stream._task, return_exceptions=True)
    assert hub.streams == {}
    assert up.cancelled >= 1
