"""``/jobs``: jobs, their history and artifacts, and the controls on them (SchedulerService)."""

from __future__ import annotations

from typing import Any

from orchestrator_gateway._bodies import JobSubmit, JobTypeIn, PriorityIn, job_spec
from orchestrator_gateway._models import ApiModel, model_for
from orchestrator_gateway._routes._deps import Text64, Text200, new_router
from orchestrator_gateway._routes._factory import Call, Filter, Rpc, any_of, render
from orchestrator_gateway._routes._resource import Resource
from stella.orchestrator.v1 import common_pb2, resources_pb2

router = new_router()
jobs = Resource(router, "job")
Job = model_for(resources_pb2.Job.DESCRIPTOR)


class JobSubmitted(ApiModel):
    """The submitted job; existing is true when its idempotency key matched a job."""

    job: Job | None  # type: ignore[valid-type]
    existing: bool


jobs.list(
    "The tenant's jobs in ascending id (creation) order.",
    any_of("state", common_pb2.JobState.DESCRIPTOR, max_length=8),
    Filter("job_type", Text200),
    Filter("run_id", Text64),
    Filter("source_id", Text64),
)
jobs.get("One job: state, attempts, lease, progress, last error, result.")


@jobs.handler("POST", model=JobSubmitted, body=JobSubmit, reason="none", status_code=201)
async def submit_job(call: Call) -> dict[str, Any]:
    """Submit one job (scope orch:operate)."""
    body: JobSubmit = call.body
    submitted = await call(jobs.rpc("Submit"), job=job_spec(body.job), run_id=body.run_id)
    return render(submitted, JobSubmitted)


jobs.list(
    "The job's state transitions (events) in seq order.",
    path=f"{jobs.item}/history",
    rpc=jobs.rpc("List", "job_events"),
    items="events",
    name="job_history",
)
jobs.list(
    "Artifacts the job's attempts recorded.",
    path=f"{jobs.item}/artifacts",
    rpc=Rpc("operations", "ListArtifacts"),
    items="artifacts",
    name="job_artifacts",
    tags=[*jobs.tags, "artifacts"],
)
jobs.command(
    "cancel", "Cancel a pending, ready or leased job (scope orch:operate; reason required)."
)
jobs.command("retry", "Move a dead job back to ready (scope orch:operate; reason required).")
jobs.command(
    "prioritize",
    "Change a waiting job's priority (scope orch:operate; reason required).",
    body=PriorityIn,
)
jobs.command(
    "replay", "Create a new job from a job's payload, with replay_of set (scope orch:operate)."
)
jobs.command(
    "pause",
    "Stop leasing the tenant's jobs, or one job type's; they stay ready (orch:operate).",
    body=JobTypeIn,
    returns="quota",
    every=True,
)
jobs.command(
    "resume",
    "Lease the tenant's (or one job type's) jobs again (scope orch:operate).",
    body=JobTypeIn,
    returns="quota",
    every=True,
)
