"""``/backfills`` and ``/watermarks``: re-processing a past event-time range of a source in
windows, and how far each source's event time has come (SchedulerService)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchestrator_gateway._bodies import BackfillCreate, struct
from orchestrator_gateway._routes._deps import Backfiller, Text64, Text200, new_router
from orchestrator_gateway._routes._factory import Call, Filter, render
from orchestrator_gateway._routes._resource import Resource

router = new_router()
backfills = Resource(router, "backfill", writer=Backfiller)

Resource(router, "watermark", tags=backfills.tags).list(
    "Event-time watermarks of the tenant's sources.",
    Filter("source_id", Text64),
    Filter("job_type", Text200),
)
backfills.list(
    "The tenant's backfills with their progress, in id order.", Filter("source_id", Text64)
)
_create = backfills.rpc("Create")


@backfills.handler("POST", model=_create.model(None), body=BackfillCreate, status_code=201)
async def create_backfill(call: Call) -> dict[str, Any]:
    """Re-process a past range in windows (scope orch:backfill; reason and ticket required by
    the scheduler). ``dry_run`` answers the preview only."""
    body: BackfillCreate = call.body
    request = _create.request(
        source_id=body.source_id,
        job_type=body.job_type,
        payload=struct(body.payload),
        dry_run=body.dry_run,
        operator=call.operator,
    )
    request.range.start.FromDatetime(body.start)
    request.range.end.FromDatetime(body.end)
    request.window_size.FromTimedelta(timedelta(seconds=body.window_size_s))
    if body.priority is not None:
        request.priority = body.priority
    return render(await call.send(_create, request), None)


backfills.get("One backfill with its progress.")
backfills.command(
    "cancel",
    "Cancel the unfinished window jobs of a backfill (scope orch:backfill; reason required).",
)
