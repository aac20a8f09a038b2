"""Live event feeds for SSE/WebSocket clients: one upstream stream shared by many clients.

A Console tab holds one live feed of its tenant. With a stream per client, 500 tabs meant
500 ``StreamEvents`` calls (each a query per commit-horizon step in the scheduler) and every
event encoded 500 times here: at 60 events/s the delivery lag reached seconds
(``bench/sse_load.py``). So clients of one tenant with the same filters share a
:class:`SharedStream`: one upstream call, each event encoded to JSON once, fanned out into
every client's bounded queue.

Exactly-once resume still holds. The shared stream keeps the last ``RING_EVENTS`` events it
received; it has received every matching event above ``covered_from`` (the head when it
opened), in seq order, because the scheduler serves only events below its commit horizon. A
client that resumes at a seq at or above ``covered_from`` is served the ring's later events,
then the live ones; one that resumes further back gets a :class:`DedicatedFeed` (its own
upstream call, as before). When the upstream call ends (the scheduler's maximum connection
age, a restart) the shared stream reconnects from its last seq: clients see no gap and no
reconnect. A shared stream with no client lingers ``LINGER_S`` (a Console reload rejoins it),
then closes.

Back-pressure is per client: a client whose queue fills is cut (the others go on) and
resumes from its last seq.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import grpc

from orchestrator_gateway._clients import Clients
from orchestrator_gateway._models import to_json
from stella.orchestrator.v1 import events_pb2

RING_EVENTS = 10_000
REPLAY_BATCH = 200
LINGER_S = 15.0
RECONNECT_MAX_S = 5.0
# The upstream refused the call itself: reconnecting cannot help, the clients must.
FINAL_CODES = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)
_END = object()
_log = logging.getLogger("orchestrator_gateway.streams")

FeedKey = tuple[str, str, str, str, tuple[str, ...]]


class SlowClient(Exception):
    """The client's buffer overflowed."""


def event_json(event: events_pb2.Event) -> str:
    """The event as compact JSON (an SSE ``data:`` line, a WebSocket message)."""
    return json.dumps(to_json(event), separators=(",", ":"))


def stream_request(after_seq: int, key: FeedKey) -> events_pb2.StreamEventsRequest:
    _tenant, run_id, source_id, job_id, types = key
    return events_pb2.StreamEventsRequest(
        after_seq=after_seq, run_id=run_id, source_id=source_id, job_id=job_id, types=list(types)
    )


class Feed(abc.ABC):
    """One client's bounded queue of ``StreamEventsResponse`` messages."""

    def __init__(self, buffer: int) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=buffer)
        self.cut = False
        self.head_seq = 0
        # The task writing to the client; cancelled when it is cut, since it may be blocked
        # writing to a client that does not read (the server then drops the connection).
        self.consumer: asyncio.Task[Any] | None = None

    def offer(self, message: Any) -> None:
        if self.cut:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.cut = True
            if self.consumer is not None:
                self.consumer.cancel()
            self.end()

    def end(self) -> None:
        """No more messages (the queue may be full: make room for the end marker)."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(_END)
            return
        with contextlib.suppress(asyncio.QueueEmpty, asyncio.QueueFull):
            self.queue.get_nowait()
            self.queue.put_nowait(_END)

    async def messages(self) -> AsyncIterator[events_pb2.StreamEventsResponse]:
        """Messages in order; raises :class:`SlowClient` once the buffer overflowed."""
        async for batch in self.batches():
            for message in batch:
                yield message

    async def batches(self) -> AsyncIterator[list[events_pb2.StreamEventsResponse]]:
        """Messages in order, as many at a time as are queued (a client that fell behind
        catches up in few writes); raises :class:`SlowClient` once the buffer overflowed."""
        while True:
            if self.cut:
                raise SlowClient
            batch = [await self.queue.get()]
            while not self.queue.empty() and batch[-1] is not _END:
                batch.append(self.queue.get_nowait())
            ended = batch[-1] is _END
            if ended:
                batch.pop()
            if self.cut:
                raise SlowClient
            if batch:
                yield batch
            if ended:
                return

    def json(self, event: events_pb2.Event) -> str:
        return event_json(event)

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop feeding this client (a dedicated call is cancelled, a shared one left)."""


class DedicatedFeed(Feed):
    """A client's own ``StreamEvents`` call (a resume from before any shared ring)."""

    def __init__(self, call: Any, buffer: int) -> None:
        super().__init__(buffer)
        self.call = call
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Read the first (keep-alive) message, so call errors surface before streaming.

        Raises:
            grpc.aio.AioRpcError: The call failed (bad filter, auth, scheduler down).
            EOFError: The stream ended before it started.
        """
        first = await self.call.read()
        if first is grpc.aio.EOF:
            raise EOFError("event stream ended before it started")
        self.head_seq = first.head_seq
        self._task = asyncio.create_task(self._pump(), name="event-feed")

    async def _pump(self) -> None:
        try:
            while not self.cut:
                message = await self.call.read()
                if message is grpc.aio.EOF:
                    break
                self.offer(message)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                _log.warning("event stream failed: %s", exc.code().name)
        finally:
            self.call.cancel()
            self.end()

    async def close(self) -> None:
        self.call.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class SharedFeed(Feed):
    """A client of a :class:`SharedStream`; never given an event at or below ``after``
    (a client resuming from another replica may be ahead of this one's stream)."""

    def __init__(self, stream: SharedStream, buffer: int, after: int) -> None:
        super().__init__(buffer)
        self.stream = stream
        self.after = after

    def offer(self, message: Any) -> None:
        if message.events and message.events[0].seq <= self.after:
            events = [e for e in message.events if e.seq > self.after]
            if not events:
                return
            message = events_pb2.StreamEventsResponse(events=events, head_seq=message.head_seq)
        super().offer(message)
        if self.cut:  # its response may never run to close it
            self.stream.leave(self)

    def json(self, event: events_pb2.Event) -> str:
        return self.stream.encoded.get(event.seq) or event_json(event)

    async def close(self) -> None:
        self.stream.leave(self)


class SharedStream:
    """One upstream ``StreamEvents`` call fanned out to the feeds of one (tenant, filter)."""

    def __init__(self, hub: EventHub, key: FeedKey, after_seq: int, metadata: Any) -> None:
        self.hub = hub
        self.key = key
        self.metadata = metadata  # the latest joiner's: reconnects use a fresh token
        self.feeds: set[SharedFeed] = set()
        self.ring: deque[events_pb2.Event] = deque()
        self.encoded: dict[int, str] = {}
        # Every matching event above covered_from has been received (once open; -1 before).
        self.covered_from = -1
        self.start_after = after_seq  # -1: the head
        self.last_seq = after_seq
        self.head_seq = 0
        self.opened = asyncio.get_running_loop().create_future()
        self._linger: asyncio.TimerHandle | None = None
        self._task = asyncio.create_task(self._run(), name="shared-event-stream")

    def covers(self, after_seq: int) -> bool:
        """Whether a client resuming after ``after_seq`` can be served from here."""
        if self.covered_from >= 0:
            return after_seq >= self.covered_from
        return 0 <= self.start_after <= after_seq  # not open yet: it will start there

    def join(self, buffer: int, after_seq: int, metadata: Any) -> SharedFeed:
        """A new feed from the head (``after_seq`` -1) or replaying the ring after
        ``after_seq`` (which :meth:`covers` must allow)."""
        self.metadata = metadata
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        # From the head: nothing at or below the head the scheduler last reported (those
        # events were committed before this client came, even if not relayed yet).
        feed = SharedFeed(self, buffer, after_seq if after_seq >= 0 else self.head_seq)
        feed.head_seq = self.head_seq
        if self._task.done():  # closed meanwhile: the client reconnects
            feed.end()
            return feed
        if after_seq >= 0:
            backlog = [e for e in self.ring if e.seq > after_seq]
            for start in range(0, len(backlog), REPLAY_BATCH):
                feed.offer(
                    events_pb2.StreamEventsResponse(
                        events=backlog[start : start + REPLAY_BATCH], head_seq=self.head_seq
                    )
                )
        self.feeds.add(feed)
        return feed

    def leave(self, feed: SharedFeed) -> None:
        self.feeds.discard(feed)
        if not self.feeds and self._linger is None and not self._task.done():
            self._linger = asyncio.get_running_loop().call_later(LINGER_S, self.close)

    def close(self) -> None:
        self.hub.forget(self)
        self._task.cancel()
        for feed in self.feeds:
            feed.end()
        self.feeds.clear()

    def _keep(self, events: Any) -> None:
        for event in events:
            self.ring.append(event)
            self.encoded[event.seq] = event_json(event)
            self.last_seq = event.seq
        while len(self.ring) > RING_EVENTS:
            dropped = self.ring.popleft()
            self.encoded.pop(dropped.seq, None)
            self.covered_from = dropped.seq

    async def _run(self) -> None:
        delay = 0.1
        try:
            while True:
                call = self.hub.clients.events.StreamEvents(
                    stream_request(self.last_seq, self.key), metadata=self.metadata
                )
                try:
                    async for message in call:
                        if not self.opened.done():
                            # The first message (a keep-alive naming the head): from here
                            # on every event after the start (or that head) will come.
                            start = message.head_seq if self.start_after < 0 else self.start_after
                            self.covered_from = self.last_seq = start
                            self.head_seq = message.head_seq
                            self.opened.set_result(None)
                            continue
                        delay = 0.1
                        self.head_seq = max(self.head_seq, message.head_seq)
                        self._keep(message.events)
                        for feed in list(self.feeds):
                            feed.offer(message)
                except grpc.aio.AioRpcError as exc:
                    if not self.opened.done():
                        self.opened.set_exception(exc)
                        return
                    if exc.code() in FINAL_CODES:
                        _log.warning("shared event stream refused: %s", exc.code().name)
                        return
                    _log.info("shared event stream interrupted (%s); resuming", exc.code().name)
                finally:
                    call.cancel()
                if not self.opened.done():
                    self.opened.set_exception(EOFError("event stream ended before it started"))
                    return
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, RECONNECT_MAX_S)
        finally:
            if not self.opened.done():
                self.opened.set_exception(EOFError("event stream closed before it started"))
            self.hub.forget(self)
            for feed in self.feeds:
                feed.end()


class EventHub:
    """The gateway's shared streams, by (tenant, filters)."""

    def __init__(self, clients: Clients, buffer: int) -> None:
        self.clients = clients
        self.buffer = buffer
        self.streams: dict[FeedKey, SharedStream] = {}

    def forget(self, stream: SharedStream) -> None:
        if self.streams.get(stream.key) is stream:
            del self.streams[stream.key]

    async def subscribe(self, key: FeedKey, after_seq: int, metadata: Any) -> Feed:
        """A feed of the events matching ``key`` after ``after_seq`` (-1: from the head).

        Raises:
            grpc.aio.AioRpcError: The upstream call failed (bad filter, auth, scheduler down).
            EOFError: The upstream stream ended before it started.
        """
        stream = self.streams.get(key)
        if stream is not None and (after_seq == -1 or stream.covers(after_seq)):
            return await self._join(stream, after_seq, metadata)
        if stream is not None:
            # Further back than the shared stream reaches: a call of its own.
            call = self.clients.events.StreamEvents(
                stream_request(after_seq, key), metadata=metadata
            )
            feed = DedicatedFeed(call, self.buffer)
            try:
                await feed.open()
            except BaseException:
                await feed.close()
                raise
            return feed
        # The first client (from the head, or resuming: after a gateway restart every
        # Console tab resumes from about the same seq and the rest join it).
        stream = SharedStream(self, key, after_seq, metadata)
        self.streams[key] = stream
        try:
            return await self._join(stream, after_seq, metadata)
        except BaseException:
            self.forget(stream)
            raise

    async def _join(self, stream: SharedStream, after_seq: int, metadata: Any) -> SharedFeed:
        if stream.opened.done():  # no wait, so nothing can arrive before the join
            stream.opened.result()
            return stream.join(self.buffer, after_seq, metadata)
        await asyncio.shield(stream.opened)
        # Events may have arrived between the opening and this join: a client from the head
        # gets them from the ring, as if it had joined at the opening.
        start = after_seq if after_seq >= 0 else stream.covered_from
        return stream.join(self.buffer, start, metadata)

    async def aclose(self) -> None:
        for stream in list(self.streams.values()):
            stream.close()
