"""``/runs``: runs and the DAGs of their jobs (SchedulerService)."""

from __future__ import annotations

from typing import Any

from orchestrator_gateway._bodies import PriorityIn, RunCreate, job_spec
from orchestrator_gateway._models import ApiModel, model_for
from orchestrator_gateway._routes._deps import Text64, Text200, new_router
from orchestrator_gateway._routes._factory import Call, Filter, any_of, render
from orchestrator_gateway._routes._resource import Resource
from stella.orchestrator.v1 import common_pb2, resources_pb2

router = new_router()
runs = Resource(router, "run")
Run = model_for(resources_pb2.Run.DESCRIPTOR)
Job = model_for(resources_pb2.Job.DESCRIPTOR)
DagEdge = model_for(resources_pb2.DagEdge.DESCRIPTOR)


class RunCreated(ApiModel):
    """The created (or, for a repeated idempotency key, existing) run and its jobs."""

    run: Run | None  # type: ignore[valid-type]
    jobs: list[Job]  # type: ignore[valid-type]
    existing: bool


class RunDag(ApiModel):
    """A run's jobs (topological order, ties by key) and dependency edges."""

    run: Run | None  # type: ignore[valid-type]
    jobs: list[Job]  # type: ignore[valid-type]
    edges: list[DagEdge]  # type: ignore[valid-type]


class RunCanceled(ApiModel):
    """The run after cancellation and how many jobs it canceled."""

    run: Run | None  # type: ignore[valid-type]
    canceled_job_count: int


class RunResumed(ApiModel):
    """The run after the resume and how many of its jobs came back."""

    run: Run | None  # type: ignore[valid-type]
    retried_job_count: int
    revived_job_count: int


class Prioritized(ApiModel):
    """How many waiting jobs of the run got the new priority."""

    changed_jobs: int


runs.list(
    "The tenant's runs in ascending id (creation) order.",
    any_of("state", common_pb2.RunState.DESCRIPTOR, max_length=8),
    Filter("source_id", Text64),
    Filter("project", Text200),
)


@runs.handler("POST", model=RunCreated, body=RunCreate, reason="none", status_code=201)
async def create_run(call: Call) -> dict[str, Any]:
    """Create a run and its DAG atomically (scope orch:operate)."""
    body: RunCreate = call.body
    jobs = [job_spec(j) for j in body.jobs]
    created = await call(runs.rpc("Create"), **body.model_dump(exclude={"jobs"}), jobs=jobs)
    return render(created, RunCreated)


runs.get("One run with its job counts.")
runs.get(
    "Every job of a run and the edges between them.",
    path=f"{runs.item}/dag",
    rpc=runs.rpc("Get", "run_dag"),
    returns=RunDag,
    name="get_run_dag",
)
runs.command(
    "cancel",
    "Cancel every non-terminal job of a run (scope orch:operate; reason required).",
    returns=RunCanceled,
)
runs.command(
    "prioritize",
    "Change the priority of a run's waiting jobs (scope orch:operate; reason required).",
    body=PriorityIn,
    returns=Prioritized,
)
runs.command(
    "resume",
    "Resume a failed run: its dead jobs go back to ready, the jobs canceled as "
    "upstream_failed below them come back, succeeded jobs never run again "
    "(scope orch:operate; reason required).",
    returns=RunResumed,
)
