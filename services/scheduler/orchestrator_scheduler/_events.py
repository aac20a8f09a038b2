"""EventStreamService: the event history, paged or live, for the gateway's SSE/WebSocket feeds.

Both calls read only up to the :class:`~orchestrator_pg.EventHorizon` (a seq below which
every writer has committed or rolled back), so a client that resumes with the last seq it
received gets every later event exactly once, in order. A live stream sends a keep-alive
message when nothing happened for ``keepalive_s`` seconds, and one right away when it opens.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from orchestrator_core import FieldViolation, InvalidArgument, paging
from orchestrator_grpckit import current_principal
from orchestrator_pg import EventHorizon, EventReader
from orchestrator_scheduler import _convert as convert
from orchestrator_scheduler import _validate as validate
from stella.orchestrator.v1 import events_pb2, events_pb2_grpc

EVENTS_SERVICE_NAME = "stella.orchestrator.v1.EventStreamService"
EVENTS_METHOD_SCOPES = {
    f"/{EVENTS_SERVICE_NAME}/StreamEvents": "orch:read",
    f"/{EVENTS_SERVICE_NAME}/ListEvents": "orch:read",
}
KEEPALIVE_S = 15.0
STREAM_BATCH = 200
MAX_TYPES = 32


def _filters(request: Any) -> tuple[uuid.UUID | None, uuid.UUID | None, uuid.UUID | None]:
    out = validate.Violations()
    run_id = validate.optional_id(request.run_id, "run_id", out)
    source_id = validate.optional_id(request.source_id, "source_id", out)
    job_id = validate.optional_id(request.job_id, "job_id", out)
    if len(request.types) > MAX_TYPES:
        out.add("types", f"at most {MAX_TYPES} entries")
    out.raise_if_any("invalid event filter")
    return run_id, source_id, job_id


class EventStreamServicer(events_pb2_grpc.EventStreamServiceServicer):
    """Serves the tenant's events up to the horizon.

    Args:
        reader: Pages of the event history.
        horizon: The running horizon tracker (a background task of the service).
        keepalive_s: Idle time after which a live stream sends a keep-alive.
    """

    def __init__(
        self, reader: EventReader, horizon: EventHorizon, *, keepalive_s: float = KEEPALIVE_S
    ) -> None:
        self.reader = reader
        self.horizon = horizon
        self.keepalive_s = keepalive_s

    async def StreamEvents(
        self, request: events_pb2.StreamEventsRequest, context: Any
    ) -> AsyncIterator[events_pb2.StreamEventsResponse]:
        principal = current_principal()
        run_id, source_id, job_id = _filters(request)
        if request.after_seq < -1:
            raise InvalidArgument(
                "after_seq must be -1 (head), 0 (oldest) or a seq",
                [FieldViolation("after_seq", f"got {request.after_seq}")],
            )
        await self.horizon.ready.wait()
        after = self.horizon.seq if request.after_seq == -1 else request.after_seq
        # A first keep-alive tells the client the stream is open (and the head), so it can
        # report success before any event arrives.
        yield events_pb2.StreamEventsResponse(keep_alive=True, head_seq=self.horizon.seq)
        while True:
            upto = self.horizon.seq
            rows = await self.reader.event_list_upto(
                principal.tenant,
                after_seq=after,
                upto_seq=upto,
                run_id=run_id,
                source_id=source_id,
                job_id=job_id,
                types=list(request.types),
                limit=STREAM_BATCH,
            )
            if rows:
                after = rows[-1]["seq"]
                yield events_pb2.StreamEventsResponse(
                    events=[convert.event(r) for r in rows], head_seq=upto
                )
                if len(rows) == STREAM_BATCH:
                    continue
            # Every event <= upto is final, so nothing between `after` and `upto` can still
            # appear for this filter: skip the scanned range.
            after = max(after, upto)
            if await self.horizon.wait_beyond(after, self.keepalive_s) <= after:
                yield events_pb2.StreamEventsResponse(keep_alive=True, head_seq=self.horizon.seq)

    async def ListEvents(self, request: events_pb2.ListEventsRequest, context: Any) -> Any:
        principal = current_principal()
        run_id, source_id, job_id = _filters(request)
        filters = {
            "run_id": request.run_id,
            "source_id": request.source_id,
            "job_id": request.job_id,
            "types": sorted(request.types),
        }
        size = paging.page_size(request.page_size)
        after = (
            paging.decode_seq_token(request.page_token, filters)
            if request.page_token
            else max(request.after_seq, 0)
        )
        await self.horizon.ready.wait()
        rows = await self.reader.event_list_upto(
            principal.tenant,
            after_seq=after,
            upto_seq=self.horizon.seq,
            run_id=run_id,
            source_id=source_id,
            job_id=job_id,
            types=list(request.types),
            limit=size,
        )
        # A full page may have more behind it; a short page is everything up to the horizon
        # for now, but new events keep coming, so the token is always given when rows came.
        token = paging.encode_token(rows[-1]["seq"], filters) if len(rows) == size else ""
        return events_pb2.ListEventsResponse(
            events=[convert.event(r) for r in rows], next_page_token=token
        )
