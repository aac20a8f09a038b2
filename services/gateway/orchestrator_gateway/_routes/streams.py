"""``/events``: the event history (ListEvents) and live feeds, Server-Sent Events and
WebSocket over EventStreamService.StreamEvents.

Resume: SSE sends each event with ``id: <seq>``; a client that reconnects with
``Last-Event-ID`` (or ``?after_seq=``) gets every later event exactly once, in order (the
scheduler serves only events below its commit horizon, see orchestrator_pg.EventHorizon).
Without either the feed starts at the head (only new events); ``after_seq=0`` replays the
retained history first.

Keep-alive: the scheduler sends a keep-alive on an idle stream (``ORCH_STREAM_KEEPALIVE_S``),
which becomes an SSE comment line (``: keep-alive``) or a ``{"keep_alive": true}`` message.

Back-pressure: events for one client wait in a bounded buffer (``stream_buffer``). A client
that does not read fast enough fills it and is cut (SSE: the response ends; WebSocket: close
code 4008), never the server; it resumes from its last seq.

Sharing: the clients of one tenant with the same filters share one upstream stream, and each
event is encoded once (``orchestrator_gateway._event_feeds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import grpc
from fastapi import Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from orchestrator_gateway import _auth as auth
from orchestrator_gateway._event_feeds import EventHub, Feed, SlowClient
from orchestrator_gateway._problems import ProblemError
from orchestrator_gateway._routes._deps import EventTypes, Reader, Text64, new_router
from orchestrator_gateway._routes._factory import Filter
from orchestrator_gateway._routes._resource import Resource

SLOW_CLIENT_CLOSE_CODE = 4008
SSE_RETRY_MS = 2000
_log = logging.getLogger("orchestrator_gateway.streams")

router = new_router()
Resource(router, "event", service="events").list(
    'Past events in seq order (a type ending in "." matches a prefix).',
    Filter("after_seq", Annotated[int, Query(ge=0, le=2**62)], 0),
    Filter("run_id", Text64),
    Filter("source_id", Text64),
    Filter("job_id", Text64),
    Filter("type", EventTypes, [], field="types"),
)


async def _subscribe(
    app: Any, caller: auth.Caller, after_seq: int, filters: tuple[str, str, str, list[str]]
) -> Feed:
    """The caller's feed (shared with the tenant's other clients of the same filters).

    Raises:
        grpc.aio.AioRpcError: The scheduler refused or failed the stream.
        ProblemError: 503 when the stream ended before it started.
    """
    run_id, source_id, job_id, types = filters
    key = (caller.principal.tenant, run_id, source_id, job_id, tuple(sorted(set(types))))
    hub: EventHub = app.state.event_hub
    try:
        return await hub.subscribe(key, after_seq, caller.metadata)
    except EOFError:
        raise ProblemError(503, "event stream ended before it started") from None


def _resume_point(last_event_id: str | None, after_seq: int | None) -> int:
    if last_event_id is not None and last_event_id.strip():
        try:
            value = int(last_event_id.strip())
        except ValueError:
            raise ProblemError(
                400,
                "Last-Event-ID must be the seq of the last event received",
                errors=[{"field": "Last-Event-ID", "description": "a non-negative integer"}],
            ) from None
        if value < 0:
            raise ProblemError(400, "Last-Event-ID must not be negative")
        return value
    return -1 if after_seq is None else after_seq


def _sse_chunk(feed: Feed, batch: list[Any]) -> bytes:
    """Queued messages as one write: keep-alive comments and one SSE event per event."""
    parts = []
    for message in batch:
        if message.keep_alive:
            parts.append(f": keep-alive head_seq={message.head_seq}\n\n")
        parts += [f"id: {e.seq}\nevent: {e.type}\ndata: {feed.json(e)}\n\n" for e in message.events]
    return "".join(parts).encode()


@router.get(
    "/events/stream",
    tags=["events"],
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless text/event-stream: one SSE event per ledger event "
            "(id = seq, event = type, data = the event JSON) and ': keep-alive' comments.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream_events_sse(
    request: Request,
    who: Reader,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
    after_seq: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    run_id: Text64 = "",
    source_id: Text64 = "",
    job_id: Text64 = "",
    type: EventTypes = [],  # noqa: B006
) -> StreamingResponse:
    """Live events of the tenant as Server-Sent Events, resumable with ``Last-Event-ID``."""
    start = _resume_point(last_event_id, after_seq)
    feed = await _subscribe(request.app, who, start, (run_id, source_id, job_id, type))

    async def body() -> AsyncIterator[bytes]:
        feed.consumer = asyncio.current_task()
        try:
            yield f"retry: {SSE_RETRY_MS}\n: open head_seq={feed.head_seq}\n\n".encode()
            async for batch in feed.batches():
                yield _sse_chunk(feed, batch)
        except SlowClient:
            _log.info("SSE client too slow (buffer full); cut it")
        finally:
            await feed.close()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.websocket("/events/ws")
async def stream_events_ws(
    websocket: WebSocket,
    after_seq: Annotated[int, Query(ge=-1, le=2**62)] = -1,
    run_id: Text64 = "",
    source_id: Text64 = "",
    job_id: Text64 = "",
    type: EventTypes = [],  # noqa: B006
) -> None:
    """Live events as WebSocket text messages, one event JSON each (NDJSON framing);
    resume with ``?after_seq=<last seq>``. Keep-alives are ``{"keep_alive": true, ...}``."""
    try:
        caller, subprotocol = auth.authenticate_websocket(websocket.app.state.verifier, websocket)
        auth.require_scope(caller, auth.READ)
    except ProblemError as exc:
        await websocket.close(code=1008, reason=exc.detail[:120])
        return
    try:
        feed = await _subscribe(websocket.app, caller, after_seq, (run_id, source_id, job_id, type))
    except grpc.aio.AioRpcError as exc:
        await websocket.close(code=1008, reason=(exc.details() or exc.code().name)[:120])
        return
    except ProblemError as exc:
        await websocket.close(code=1011, reason=exc.detail[:120])
        return
    await websocket.accept(subprotocol=subprotocol)

    async def watch_disconnect() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    watcher = asyncio.create_task(watch_disconnect())
    feed.consumer = asyncio.current_task()
    try:
        await websocket.send_text(json.dumps({"keep_alive": True, "head_seq": feed.head_seq}))
        async for message in feed.messages():
            if watcher.done():
                break
            if message.keep_alive:
                await websocket.send_text(
                    json.dumps({"keep_alive": True, "head_seq": message.head_seq})
                )
            for event in message.events:
                await websocket.send_text(feed.json(event))
    except (SlowClient, asyncio.CancelledError):
        if not feed.cut:
            raise
        _log.info("WebSocket client too slow (buffer full); cut it")
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await websocket.close(code=SLOW_CLIENT_CLOSE_CODE, reason="client too slow; resume")
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        watcher.cancel()
        await feed.close()
