"""``/incidents`` (list, one with its timeline, acknowledge), ``/overview`` and
``/artifacts``: what operators watch (SchedulerService's operator RPCs)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Query
from google.protobuf import duration_pb2

from orchestrator_gateway._routes._deps import Text64, new_router
from orchestrator_gateway._routes._factory import Filter, one_of
from orchestrator_gateway._routes._resource import Resource
from stella.orchestrator.v1 import resources_pb2

router = new_router()


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(timedelta(seconds=seconds))
    return duration


incidents = Resource(router, "incident", service="operations")
incidents.list(
    "Incidents (failure clusters), most recently seen first.",
    one_of("state", resources_pb2.IncidentState.DESCRIPTOR),
)
incidents.get(
    "One incident and its timeline (opened, updated, acknowledged, resolved).", returns=None
)
incidents.command(
    "acknowledge",
    "Record that an operator has seen the incident, with who and why (scope orch:operate; "
    "reason required). The incident stays open until its quiet period ends.",
)
Resource(router, "overview", plural="overview", service="operations").get(
    "Queue depth, throughput, failure rate and SLO burn of the tenant.",
    Filter(
        "window_s",
        Annotated[float, Query(gt=0, le=86400, description="Rate window")],
        900,
        field="window",
        convert=_duration,
    ),
    path="/overview",
    returns=None,
    name="overview",
)
Resource(router, "artifact", service="operations").list(
    "Artifacts of one job or one run (exactly one of job_id and run_id).",
    Filter("job_id", Text64),
    Filter("run_id", Text64),
)
