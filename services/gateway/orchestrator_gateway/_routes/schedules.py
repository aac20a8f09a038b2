"""``/schedules``: cron schedules (UTC) that create runs from a template (SchedulerService)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchestrator_gateway._bodies import ScheduleCreate, ScheduleUpdate, job_spec
from orchestrator_gateway._models import model_for
from orchestrator_gateway._routes._deps import new_router
from orchestrator_gateway._routes._factory import Call, flag, render
from orchestrator_gateway._routes._resource import Resource
from orchestrator_grpckit import enum_number
from stella.orchestrator.v1 import resources_pb2

router = new_router()
schedules = Resource(router, "schedule")
_CATCH_UP = resources_pb2.CatchUpPolicy.DESCRIPTOR
_OVERLAP = resources_pb2.OverlapPolicy.DESCRIPTOR
Schedule = model_for(resources_pb2.Schedule.DESCRIPTOR)

schedules.list("The tenant's schedules in id order.", flag("enabled"))


@schedules.handler("POST", model=Schedule, body=ScheduleCreate, reason="optional", status_code=201)
async def create_schedule(call: Call) -> dict[str, Any]:
    """Register a cron schedule (UTC) that creates runs from a template (scope orch:operate)."""
    body: ScheduleCreate = call.body
    template = body.run_template
    schedule = resources_pb2.Schedule(
        name=body.name,
        cron=body.cron,
        source_id=body.source_id,
        run_template=resources_pb2.RunTemplate(
            name=template.name,
            project=template.project,
            labels=template.labels,
            jobs=[job_spec(j) for j in template.jobs],
        ),
        catch_up=enum_number(_CATCH_UP, body.catch_up)
        if body.catch_up
        else resources_pb2.CATCH_UP_POLICY_UNSPECIFIED,
        overlap=enum_number(_OVERLAP, body.overlap)
        if body.overlap
        else resources_pb2.OVERLAP_POLICY_UNSPECIFIED,
        enabled=body.enabled,
    )
    if body.catch_up_window_s is not None:
        schedule.catch_up_window.FromTimedelta(timedelta(seconds=body.catch_up_window_s))
    return render(
        await call(schedules.rpc("Create"), schedule=schedule, operator=call.operator), "schedule"
    )


schedules.get("One schedule with its next and last fire times.")
schedules.update(
    ScheduleUpdate,
    'Change a schedule (scope orch:operate), e.g. ``{"enabled": false}`` to stop it.',
    reason="optional",
)
schedules.delete("Remove a schedule; runs it created stay (scope orch:operate; reason required).")
