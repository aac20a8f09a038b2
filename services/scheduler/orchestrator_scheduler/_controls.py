"""Control RPCs of SchedulerService (PauseJobs, ResumeJobs, PrioritizeJob, PrioritizeRun,
ReplayJob, ResumeRun), mixed into :class:`~orchestrator_scheduler.SchedulerServicer`.

All need ``orch:operate``; pausing, resuming jobs and resuming a run need an operator reason.
Every control is audited with the actor, reason and ticket (pauses in ``QuotaStore``,
priorities, replays and run resumes in ``JobStore`` and ``RunStore``).
"""

from __future__ import annotations

from typing import Any

from orchestrator_grpckit import current_principal
from orchestrator_pg import Stores
from orchestrator_scheduler import _convert as convert
from orchestrator_scheduler import _validate as validate
from orchestrator_scheduler._quotas import quota_message
from orchestrator_scheduler._validate import request_context
from stella.orchestrator.v1 import scheduler_pb2

CONTROL_METHODS = (
    "PauseJobs",
    "ResumeJobs",
    "PrioritizeJob",
    "PrioritizeRun",
    "ReplayJob",
    "ResumeRun",
)


def _job_type(value: str) -> str:
    out = validate.Violations()
    if value and not validate.JOB_TYPE_RE.match(value):
        out.add("job_type", "must match ^[a-z][a-z0-9_.-]{0,127}$, or be empty for the tenant")
    out.raise_if_any("invalid job_type")
    return value


def _priority(value: int) -> int:
    out = validate.Violations()
    if not -1000 <= value <= 1000:
        out.add("priority", f"must be -1000..1000, got {value}")
    out.raise_if_any("invalid priority")
    return value


class ControlMethods:
    """The control RPCs; the servicer provides ``stores``."""

    stores: Stores

    async def PauseJobs(self, request: scheduler_pb2.PauseJobsRequest, context: Any) -> Any:
        ctx = request_context(current_principal(), request.operator, reason_required=True)
        row = await self.stores.quotas.quota_pause_upsert(
            ctx, _job_type(request.job_type), paused=True
        )
        return scheduler_pb2.PauseJobsResponse(quota=quota_message(row))

    async def ResumeJobs(self, request: scheduler_pb2.ResumeJobsRequest, context: Any) -> Any:
        ctx = request_context(current_principal(), request.operator, reason_required=True)
        row = await self.stores.quotas.quota_pause_upsert(
            ctx, _job_type(request.job_type), paused=False
        )
        return scheduler_pb2.ResumeJobsResponse(quota=quota_message(row))

    async def PrioritizeJob(self, request: scheduler_pb2.PrioritizeJobRequest, context: Any) -> Any:
        ctx = request_context(current_principal(), request.operator)
        job_id = validate.parse_id_or_raise(request.job_id, "job_id")
        row = await self.stores.jobs.job_prioritize(ctx, job_id, _priority(request.priority))
        parents = await self.stores.jobs.job_parents([job_id])
        return scheduler_pb2.PrioritizeJobResponse(job=convert.job(row, parents[job_id]))

    async def PrioritizeRun(self, request: scheduler_pb2.PrioritizeRunRequest, context: Any) -> Any:
        ctx = request_context(current_principal(), request.operator)
        run_id = validate.parse_id_or_raise(request.run_id, "run_id")
        changed = await self.stores.runs.run_prioritize(ctx, run_id, _priority(request.priority))
        return scheduler_pb2.PrioritizeRunResponse(changed_jobs=changed)

    async def ReplayJob(self, request: scheduler_pb2.ReplayJobRequest, context: Any) -> Any:
        ctx = request_context(current_principal(), request.operator)
        job_id = validate.parse_id_or_raise(request.job_id, "job_id")
        row = await self.stores.jobs.job_replay(ctx, job_id)
        return scheduler_pb2.ReplayJobResponse(job=convert.job(row))

    async def ResumeRun(self, request: scheduler_pb2.ResumeRunRequest, context: Any) -> Any:
        principal = current_principal()
        ctx = request_context(principal, request.operator, reason_required=True)
        run_id = validate.parse_id_or_raise(request.run_id, "run_id")
        resumed = await self.stores.runs.run_resume(ctx, run_id)
        counts = await self.stores.runs.run_job_counts(principal.tenant, [run_id])
        return scheduler_pb2.ResumeRunResponse(
            run=convert.run(resumed.run, counts[run_id]),
            retried_job_count=resumed.retried,
            revived_job_count=resumed.revived,
        )
