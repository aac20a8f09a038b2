"""REST routes under ``/api/v1/orchestrator``: translate JSON ↔ protobuf and call one RPC.

Every route authenticates the caller (:func:`caller`), checks the scope it needs (the
services check again), and maps the gRPC answer to JSON with :mod:`_models`. Errors become
problem+json in the app's exception handlers. Lists are cursor-paged with ``page_size``
(1-500, default 50) and ``page_token`` (the previous page's ``next_page_token``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import grpc
from fastapi import APIRouter, Depends, Query, Request, Response
from google.protobuf import field_mask_pb2, struct_pb2
from pydantic import BaseModel, Field

from orchestrator_gateway import _auth as auth
from orchestrator_gateway._auth import Caller, OperatorReason
from orchestrator_gateway._bodies import (
    BackfillCreate,
    BucketConfigIn,
    BulkReplayIn,
    JobSpecIn,
    JobSubmit,
    JobTypeIn,
    PriorityIn,
    QuotaCreate,
    QuotaUpdate,
    RunCreate,
    ScheduleCreate,
    ScheduleUpdate,
    SourceCreate,
    SourceUpdate,
    ThrottleIn,
)
from orchestrator_gateway._clients import Clients
from orchestrator_gateway._models import (
    ApiModel,
    enum_labels,
    enum_number,
    model_for,
    page_model,
    to_json,
)
from orchestrator_gateway._problems import PROBLEM_RESPONSES, ProblemError
from stella.orchestrator.v1 import (
    audit_pb2,
    common_pb2,
    events_pb2,
    operations_pb2,
    ratelimit_pb2,
    resources_pb2,
    scheduler_pb2,
)

API_PREFIX = "/api/v1/orchestrator"

router = APIRouter(prefix=API_PREFIX, responses=PROBLEM_RESPONSES)

_JOB_STATE = common_pb2.JobState.DESCRIPTOR
_RUN_STATE = common_pb2.RunState.DESCRIPTOR
_ERROR_CLASS = common_pb2.ErrorClass.DESCRIPTOR
_DL_STATUS = resources_pb2.DeadLetterStatus.DESCRIPTOR
_INCIDENT_STATE = resources_pb2.IncidentState.DESCRIPTOR
_CIRCUIT_STATE = common_pb2.CircuitState.DESCRIPTOR


def _labels(enum: Any) -> Any:
    return Literal[tuple(label for label in enum_labels(enum) if label != "unspecified")]


JobStateLabel = _labels(_JOB_STATE)
RunStateLabel = _labels(_RUN_STATE)
ErrorClassLabel = _labels(_ERROR_CLASS)
DeadLetterStatusLabel = _labels(_DL_STATUS)
IncidentStateLabel = _labels(_INCIDENT_STATE)
CircuitStateLabel = _labels(_CIRCUIT_STATE)

Source = model_for(resources_pb2.Source.DESCRIPTOR)
Run = model_for(resources_pb2.Run.DESCRIPTOR)
Job = model_for(resources_pb2.Job.DESCRIPTOR)
DagEdge = model_for(resources_pb2.DagEdge.DESCRIPTOR)
Quota = model_for(resources_pb2.Quota.DESCRIPTOR)
Schedule = model_for(resources_pb2.Schedule.DESCRIPTOR)
Backfill = model_for(resources_pb2.Backfill.DESCRIPTOR)
BackfillCreated = model_for(scheduler_pb2.CreateBackfillResponse.DESCRIPTOR)
_CATCH_UP = resources_pb2.CatchUpPolicy.DESCRIPTOR
_OVERLAP = resources_pb2.OverlapPolicy.DESCRIPTOR
Bucket = model_for(ratelimit_pb2.Bucket.DESCRIPTOR)
Throttle = model_for(resources_pb2.Throttle.DESCRIPTOR)
DeadLetterEntry = model_for(resources_pb2.DeadLetterEntry.DESCRIPTOR)
Overview = model_for(operations_pb2.GetOverviewResponse.DESCRIPTOR)
DeadLetterStats = model_for(operations_pb2.GetDeadLetterStatsResponse.DESCRIPTOR)


def clients(request: Request) -> Clients:
    return request.app.state.clients


def caller(request: Request) -> Caller:
    """The authenticated caller (401/403 problem otherwise)."""
    return auth.authenticate(request.app.state.verifier, request)


def reader(who: Annotated[Caller, Depends(caller)]) -> Caller:
    auth.require_scope(who, auth.READ)
    return who


def operator(who: Annotated[Caller, Depends(caller)]) -> Caller:
    auth.require_scope(who, auth.OPERATE)
    return who


def quota_admin(who: Annotated[Caller, Depends(caller)]) -> Caller:
    auth.require_scope(who, auth.QUOTA)
    return who


def reason(request: Request) -> OperatorReason:
    return auth.operator_reason(request)


def optional_reason(request: Request) -> OperatorReason:
    return auth.operator_reason(request, required=False)


Reader = Annotated[Caller, Depends(reader)]
Operator = Annotated[Caller, Depends(operator)]
QuotaAdmin = Annotated[Caller, Depends(quota_admin)]
Grpc = Annotated[Clients, Depends(clients)]
Reason = Annotated[OperatorReason, Depends(reason)]
PageSize = Annotated[int, Query(ge=1, le=500, description="Items per page")]
PageToken = Annotated[str, Query(max_length=4096, description="next_page_token of the last page")]
ReasonHeader = Annotated[
    str,
    Field(
        description="Why the action is taken (required, at most 256 characters; audited). "
        "X-Stella-Reason is accepted too."
    ),
]


def _operator_ctx(why: OperatorReason) -> common_pb2.OperatorContext:
    return common_pb2.OperatorContext(reason=why.reason, ticket=why.ticket)


def _page(items: list[Any], token: str) -> dict[str, Any]:
    return {"items": [to_json(i) for i in items], "next_page_token": token}


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    try:
        s.update(data)
    except (ValueError, TypeError) as exc:
        raise ProblemError(400, f"payload is not representable as JSON object: {exc}") from None
    return s


def _job_spec(spec: JobSpecIn) -> resources_pb2.JobSpec:
    msg = resources_pb2.JobSpec(
        key=spec.key,
        job_type=spec.job_type,
        source_id=spec.source_id,
        project=spec.project,
        priority=spec.priority,
        payload=_struct(spec.payload),
        idempotency_key=spec.idempotency_key,
        correlation_id=spec.correlation_id,
        depends_on=spec.depends_on,
        labels=spec.labels,
    )
    if spec.max_attempts:
        msg.retry_policy.max_attempts = spec.max_attempts
    return msg


def _reason_doc() -> dict[str, Any]:
    # Documents the operator headers on control actions (read by operator_reason()).
    return {
        "parameters": [
            {
                "name": "X-Stella-Operator-Reason",
                "in": "header",
                "required": True,
                "description": "Why the action is taken (at most 256 characters; audited). "
                "X-Stella-Reason is accepted too.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 256},
            },
            {
                "name": "X-Stella-Operator-Ticket",
                "in": "header",
                "required": False,
                "description": "Change or incident ticket (at most 128 characters).",
                "schema": {"type": "string", "maxLength": 128},
            },
        ]
    }


def _idempotency_doc(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = {
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Repeating a POST with the same key and body returns the first "
                "answer (Idempotent-Replayed: true) for 24 h; another body is 422.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        ]
    }
    if extra:
        doc["parameters"] += extra["parameters"]
    return doc


CONTROL_DOC = _idempotency_doc(_reason_doc())


# ----------------------------------------------------------------------------- identity


class WhoAmI(BaseModel):
    """The caller as the gateway sees the token."""

    subject: str
    tenant: str
    tenants: list[str]
    scopes: list[str]


@router.get("/whoami", response_model=WhoAmI, tags=["identity"])
async def whoami(who: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
    """The caller's subject, tenant and scopes (what the Console shows and enables)."""
    p = who.principal
    return {
        "subject": p.subject,
        "tenant": p.tenant,
        "tenants": list(p.tenants),
        "scopes": sorted(p.scopes),
    }


# ----------------------------------------------------------------------------- sources


@router.get(
    "/sources", response_model=page_model(resources_pb2.Source.DESCRIPTOR), tags=["sources"]
)
async def list_sources(
    who: Reader,
    grpc_: Grpc,
    source_type: Annotated[str, Query(max_length=64)] = "",
    enabled: bool | None = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """The tenant's sources in ascending id order."""
    req = scheduler_pb2.ListSourcesRequest(
        source_type=source_type, page_size=page_size, page_token=page_token
    )
    if enabled is not None:
        req.enabled = enabled
    resp = await grpc_.call(who, grpc_.scheduler.ListSources, req)
    return _page(list(resp.sources), resp.next_page_token)


@router.post(
    "/sources",
    response_model=Source,
    status_code=201,
    tags=["sources"],
    openapi_extra=_idempotency_doc(),
)
async def create_source(
    body: SourceCreate,
    who: Operator,
    grpc_: Grpc,
    why: Annotated[OperatorReason, Depends(optional_reason)],
) -> dict[str, Any]:
    """Register a source (scope orch:operate)."""
    src = resources_pb2.Source(
        name=body.name,
        source_type=body.source_type,
        host=body.host,
        base_url=body.base_url,
        enabled=body.enabled,
        job_types=body.job_types,
        labels=body.labels,
    )
    resp = await grpc_.call(
        who,
        grpc_.scheduler.CreateSource,
        scheduler_pb2.CreateSourceRequest(source=src, operator=_operator_ctx(why)),
    )
    return to_json(resp.source)


@router.get("/sources/{source_id}", response_model=Source, tags=["sources"])
async def get_source(source_id: str, who: Reader, grpc_: Grpc) -> dict[str, Any]:
    """One source."""
    resp = await grpc_.call(
        who, grpc_.scheduler.GetSource, scheduler_pb2.GetSourceRequest(source_id=source_id)
    )
    return to_json(resp.source)


@router.patch("/sources/{source_id}", response_model=Source, tags=["sources"])
async def update_source(
    source_id: str,
    body: SourceUpdate,
    who: Operator,
    grpc_: Grpc,
    why: Annotated[OperatorReason, Depends(optional_reason)],
) -> dict[str, Any]:
    """Change fields of a source (scope orch:operate); ``version`` guards concurrent edits."""
    fields = body.model_dump(exclude_unset=True, exclude={"version"})
    fields = {k: v for k, v in fields.items() if v is not None}
    if not fields:
        raise ProblemError(400, "nothing to change: send at least one field")
    src = resources_pb2.Source(id=source_id, version=body.version, **fields)
    resp = await grpc_.call(
        who,
        grpc_.scheduler.UpdateSource,
        scheduler_pb2.UpdateSourceRequest(
            source=src,
            update_mask=field_mask_pb2.FieldMask(paths=sorted(fields)),
            operator=_operator_ctx(why),
        ),
    )
    return to_json(resp.source)


@router.delete(
    "/sources/{source_id}",
    status_code=204,
    response_class=Response,
    tags=["sources"],
    openapi_extra=_reason_doc(),
)
async def delete_source(source_id: str, who: Operator, grpc_: Grpc, why: Reason) -> Response:
    """Remove a source without non-terminal jobs (scope orch:operate; reason required)."""
    await grpc_.call(
        who,
        grpc_.scheduler.DeleteSource,
        scheduler_pb2.DeleteSourceRequest(source_id=source_id, operator=_operator_ctx(why)),
    )
    return Response(status_code=204)


async def _set_paused(
    source_id: str, paused: bool, who: Caller, grpc_: Clients, why: OperatorReason
) -> dict[str, Any]:
    resp = await grpc_.call(
        who,
        grpc_.scheduler.UpdateSource,
        scheduler_pb2.UpdateSourceRequest(
            source=resources_pb2.Source(id=source_id, paused=paused),
            update_mask=field_mask_pb2.FieldMask(paths=["paused"]),
            operator=_operator_ctx(why),
        ),
    )
    return to_json(resp.source)


@router.post(
    "/sources/{source_id}/pause", response_model=Source, tags=["sources"], openapi_extra=CONTROL_DOC
)
async def pause_source(source_id: str, who: Operator, grpc_: Grpc, why: Reason) -> dict[str, Any]:
    """Stop leasing the source's jobs until resumed (scope orch:operate; reason required)."""
    return await _set_paused(source_id, True, who, grpc_, why)


@router.post(
    "/sources/{source_id}/resume",
    response_model=Source,
    tags=["sources"],
    openapi_extra=CONTROL_DOC,
)
async def resume_source(source_id: str, who: Operator, grpc_: Grpc, why: Reason) -> dict[str, Any]:
    """Lease the source's jobs again (scope orch:operate; reason required)."""
    return await _set_paused(source_id, False, who, grpc_, why)


class ThrottleResult(ApiModel):
    """The override record and the bucket after it."""

    throttle: Throttle | None  # type: ignore[valid-type]
    bucket: Bucket | None  # type: ignore[valid-type]


async def _source_host(source_id: str, who: Caller, grpc_: Clients) -> str:
    resp = await grpc_.call(
        who, grpc_.scheduler.GetSource, scheduler_pb2.GetSourceRequest(source_id=source_id)
    )
    return str(resp.source.host)


@router.post(
    "/sources/{source_id}/throttle",
    response_model=ThrottleResult,
    tags=["sources", "throttles"],
    openapi_extra=CONTROL_DOC,
)
async def throttle_source(
    source_id: str, body: ThrottleIn, who: QuotaAdmin, grpc_: Grpc, why: Reason
) -> dict[str, Any]:
    """Pin the refill rate of the source's rate-limit key {tenant, host} for a while
    (scope orch:quota; reason required). 0 pauses the key."""
    host = await _source_host(source_id, who, grpc_)
    until = datetime.now(UTC) + timedelta(seconds=body.duration_s)
    req = ratelimit_pb2.SetThrottleOverrideRequest(
        key=ratelimit_pb2.BucketKey(tenant=who.principal.tenant, host=host),
        refill_per_second=body.refill_per_second,
        operator=_operator_ctx(why),
        source_id=source_id,
    )
    req.until.FromDatetime(until)
    resp = await grpc_.call(who, grpc_.ratelimit.SetThrottleOverride, req)
    return {"throttle": to_json(resp.throttle), "bucket": to_json(resp.bucket)}


@router.delete(
    "/sources/{source_id}/throttle",
    response_model=Bucket,
    tags=["sources", "throttles"],
    openapi_extra=_reason_doc(),
)
async def unthrottle_source(
    source_id: str, who: QuotaAdmin, grpc_: Grpc, why: Reason
) -> dict[str, Any]:
    """Remove the operator override of the source's key (scope orch:quota; reason required)."""
    host = await _source_host(source_id, who, grpc_)
    resp = await grpc_.call(
        who,
        grpc_.ratelimit.ClearThrottleOverride,
        ratelimit_pb2.ClearThrottleOverrideRequest(
            key=ratelimit_pb2.BucketKey(tenant=who.principal.tenant, host=host),
            operator=_operator_ctx(why),
        ),
    )
    return to_json(resp.bucket)


# ----------------------------------------------------------------------------- runs


@router.get("/runs", response_model=page_model(resources_pb2.Run.DESCRIPTOR), tags=["runs"])
async def list_runs(
    who: Reader,
    grpc_: Grpc,
    state: Annotated[list[RunStateLabel], Query(max_length=8)] = [],  # type: ignore[valid-type]  # noqa: B006
    source_id: Annotated[str, Query(max_length=64)] = "",
    project: Annotated[str, Query(max_length=200)] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """The tenant's runs in ascending id (creation) order."""
    req = scheduler_pb2.ListRunsRequest(
        states=[enum_number(_RUN_STATE, s) for s in state],
        source_id=source_id,
        project=project,
        page_size=page_size,
        page_token=page_token,
    )
    resp = await grpc_.call(who, grpc_.scheduler.ListRuns, req)
    return _page(list(resp.runs), resp.next_page_token)


class RunCreated(ApiModel):
    """The created (or, for a repeated idempotency key, existing) run and its jobs."""

    run: Run | None  # type: ignore[valid-type]
    jobs: list[Job]  # type: ignore[valid-type]
    existing: bool


@router.post(
    "/runs",
    response_model=RunCreated,
    status_code=201,
    tags=["runs"],
    openapi_extra=_idempotency_doc(),
)
async def create_run(body: RunCreate, who: Operator, grpc_: Grpc) -> dict[str, Any]:
    """Create a run and its DAG atomically (scope orch:operate)."""
    req = scheduler_pb2.CreateRunRequest(
        project=body.project,
        name=body.name,
        source_id=body.source_id,
        correlation_id=body.correlation_id,
        idempotency_key=body.idempotency_key,
        labels=body.labels,
        jobs=[_job_spec(j) for j in body.jobs],
    )
    resp = await grpc_.call(who, grpc_.scheduler.CreateRun, req)
    return {
        "run": to_json(resp.run),
        "jobs": [to_json(j) for j in resp.jobs],
        "existing": resp.existing,
    }


@router.get("/runs/{run_id}", response_model=Run, tags=["runs"])
async def get_run(run_id: str, who: Reader, grpc_: Grpc) -> dict[str, Any]:
    """One run with its job counts."""
    resp = await grpc_.call(who, grpc_.scheduler.GetRun, scheduler_pb2.GetRunRequest(run_id=run_id))
    return to_json(resp.run)


class RunDag(ApiModel):
    """A run's jobs (topological order, ties by key) and dependency edges."""

    run: Run | None  # type: ignore[valid-type]
    jobs: list[Job]  # type: ignore[valid-type]
    edges: list[DagEdge]  # type: ignore[valid-type]


@router.get("/runs/{run_id}/dag", response_model=RunDag, tags=["runs"])
async def get_run_dag(run_id: str, who: Reader, grpc_: Grpc) -> dict[str, Any]:
    """Every job of a run and the edges between them."""
    resp = await grpc_.call(
        who, grpc_.scheduler.GetRunDag, scheduler_pb2.GetRunDagRequest(run_id=run_id)
    )
    return {
        "run": to_json(resp.run),
        "jobs": [to_json(j) for j in resp.jobs],
        "edges": [to_json(e) for e in resp.edges],
    }


class RunCanceled(ApiModel):
    """The run after cancellation and how many jobs it canceled."""

    run: Run | None  # type: ignore[valid-type]
    canceled_job_count: int


@router.post(
    "/runs/{run_id}/cancel", response_model=RunCanceled, tags=["runs"], openapi_extra=CONTROL_DOC
)
async def cancel_run(run_id: str, who: Operator, grpc_: Grpc, why: Reason) -> dict[str, Any]:
    """Cancel every non-terminal job of a run (scope orch:operate; reason required)."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.CancelRun,
        scheduler_pb2.CancelRunRequest(run_id=run_id, operator=_operator_ctx(why)),
    )
    return {"run": to_json(resp.run), "canceled_job_count": resp.canceled_job_count}


# ----------------------------------------------------------------------------- jobs


@router.get("/jobs", response_model=page_model(resources_pb2.Job.DESCRIPTOR), tags=["jobs"])
async def list_jobs(
    who: Reader,
    grpc_: Grpc,
    state: Annotated[list[JobStateLabel], Query(max_length=8)] = [],  # type: ignore[valid-type]  # noqa: B006
    job_type: Annotated[str, Query(max_length=200)] = "",
    run_id: Annotated[str, Query(max_length=64)] = "",
    source_id: Annotated[str, Query(max_length=64)] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """The tenant's jobs in ascending id (creation) order."""
    req = scheduler_pb2.ListJobsRequest(
        states=[enum_number(_JOB_STATE, s) for s in state],
        job_type=job_type,
        run_id=run_id,
        source_id=source_id,
        page_size=page_size,
        page_token=page_token,
    )
    resp = await grpc_.call(who, grpc_.scheduler.ListJobs, req)
    return _page(list(resp.jobs), resp.next_page_token)


class JobSubmitted(ApiModel):
    """The submitted job; existing is true when its idempotency key matched a job."""

    job: Job | None  # type: ignore[valid-type]
    existing: bool


@router.post(
    "/jobs",
    response_model=JobSubmitted,
    status_code=201,
    tags=["jobs"],
    openapi_extra=_idempotency_doc(),
)
async def submit_job(body: JobSubmit, who: Operator, grpc_: Grpc) -> dict[str, Any]:
    """Submit one job (scope orch:operate)."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.SubmitJob,
        scheduler_pb2.SubmitJobRequest(job=_job_spec(body.job), run_id=body.run_id),
    )
    return {"job": to_json(resp.job), "existing": resp.existing}


@router.get("/jobs/{job_id}", response_model=Job, tags=["jobs"])
async def get_job(job_id: str, who: Reader, grpc_: Grpc) -> dict[str, Any]:
    """One job: state, attempts, lease, progress, last error, result."""
    resp = await grpc_.call(who, grpc_.scheduler.GetJob, scheduler_pb2.GetJobRequest(job_id=job_id))
    return to_json(resp.job)


@router.get(
    "/jobs/{job_id}/history",
    response_model=page_model(events_pb2.Event.DESCRIPTOR),
    tags=["jobs"],
)
async def job_history(
    job_id: str, who: Reader, grpc_: Grpc, page_size: PageSize = 50, page_token: PageToken = ""
) -> dict[str, Any]:
    """The job's state transitions (events) in seq order."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.ListJobEvents,
        scheduler_pb2.ListJobEventsRequest(
            job_id=job_id, page_size=page_size, page_token=page_token
        ),
    )
    return _page(list(resp.events), resp.next_page_token)


@router.get(
    "/jobs/{job_id}/artifacts",
    response_model=page_model(resources_pb2.Artifact.DESCRIPTOR),
    tags=["jobs", "artifacts"],
)
async def job_artifacts(
    job_id: str, who: Reader, grpc_: Grpc, page_size: PageSize = 50, page_token: PageToken = ""
) -> dict[str, Any]:
    """Artifacts the job's attempts recorded."""
    resp = await grpc_.call(
        who,
        grpc_.operations.ListArtifacts,
        operations_pb2.ListArtifactsRequest(
            job_id=job_id, page_size=page_size, page_token=page_token
        ),
    )
    return _page(list(resp.artifacts), resp.next_page_token)


@router.post("/jobs/{job_id}/cancel", response_model=Job, tags=["jobs"], openapi_extra=CONTROL_DOC)
async def cancel_job(job_id: str, who: Operator, grpc_: Grpc, why: Reason) -> dict[str, Any]:
    """Cancel a pending, ready or leased job (scope orch:operate; reason required)."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.CancelJob,
        scheduler_pb2.CancelJobRequest(job_id=job_id, operator=_operator_ctx(why)),
    )
    return to_json(resp.job)


@router.post("/jobs/{job_id}/retry", response_model=Job, tags=["jobs"], openapi_extra=CONTROL_DOC)
async def retry_job(job_id: str, who: Operator, grpc_: Grpc, why: Reason) -> dict[str, Any]:
    """Move a dead job back to ready (scope orch:operate; reason required)."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.RetryJob,
        scheduler_pb2.RetryJobRequest(job_id=job_id, operator=_operator_ctx(why)),
    )
    return to_json(resp.job)


@router.get(
    "/artifacts",
    response_model=page_model(resources_pb2.Artifact.DESCRIPTOR),
    tags=["artifacts"],
)
async def list_artifacts(
    who: Reader,
    grpc_: Grpc,
    job_id: Annotated[str, Query(max_length=64)] = "",
    run_id: Annotated[str, Query(max_length=64)] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """Artifacts of one job or one run (exactly one of job_id and run_id)."""
    resp = await grpc_.call(
        who,
        grpc_.operations.ListArtifacts,
        operations_pb2.ListArtifactsRequest(
            job_id=job_id, run_id=run_id, page_size=page_size, page_token=page_token
        ),
    )
    return _page(list(resp.artifacts), resp.next_page_token)


# ----------------------------------------------------------------------------- quotas


@router.get("/quotas", response_model=page_model(resources_pb2.Quota.DESCRIPTOR), tags=["quotas"])
async def list_quotas(
    who: Reader,
    grpc_: Grpc,
    job_type: Annotated[str, Query(max_length=200)] = "",
    paused: bool | None = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """The tenant's quotas."""
    req = scheduler_pb2.ListQuotasRequest(
        job_type=job_type, page_size=page_size, page_token=page_token
    )
    if paused is not None:
        req.paused = paused
    resp = await grpc_.call(who, grpc_.scheduler.ListQuotas, req)
    return _page(list(resp.quotas), resp.next_page_token)


@router.post(
    "/quotas", response_model=Quota, status_code=201, tags=["quotas"], openapi_extra=CONTROL_DOC
)
async def create_quota(
    body: QuotaCreate, who: QuotaAdmin, grpc_: Grpc, why: Reason
) -> dict[str, Any]:
    """Set a quota (scope orch:quota; reason required)."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.CreateQuota,
        scheduler_pb2.CreateQuotaRequest(
            quota=resources_pb2.Quota(**body.model_dump()), operator=_operator_ctx(why)
        ),
    )
    return to_json(resp.quota)


@router.get("/quotas/{quota_id}", response_model=Quota, tags=["quotas"])
async def get_quota(quota_id: str, who: Reader, grpc_: Grpc) -> dict[str, Any]:
    """One quota."""
    resp = await grpc_.call(
        who, grpc_.scheduler.GetQuota, scheduler_pb2.GetQuotaRequest(quota_id=quota_id)
    )
    return to_json(resp.quota)


@router.patch(
    "/quotas/{quota_id}", response_model=Quota, tags=["quotas"], openapi_extra=_reason_doc()
)
async def update_quota(
    quota_id: str, body: QuotaUpdate, who: QuotaAdmin, grpc_: Grpc, why: Reason
) -> dict[str, Any]:
    """Change a quota (scope orch:quota; reason required)."""
    fields = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    if not fields:
        raise ProblemError(400, "nothing to change: send at least one field")
    resp = await grpc_.call(
        who,
        grpc_.scheduler.UpdateQuota,
        scheduler_pb2.UpdateQuotaRequest(
            quota=resources_pb2.Quota(id=quota_id, **fields),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(fields)),
            operator=_operator_ctx(why),
        ),
    )
    return to_json(resp.quota)


@router.delete(
    "/quotas/{quota_id}",
    status_code=204,
    response_class=Response,
    tags=["quotas"],
    openapi_extra=_reason_doc(),
)
async def delete_quota(quota_id: str, who: QuotaAdmin, grpc_: Grpc, why: Reason) -> Response:
    """Remove a quota (scope orch:quota; reason required)."""
    await grpc_.call(
        who,
        grpc_.scheduler.DeleteQuota,
        scheduler_pb2.DeleteQuotaRequest(quota_id=quota_id, operator=_operator_ctx(why)),
    )
    return Response(status_code=204)


# ----------------------------------------------------------------------------- schedules


@router.get(
    "/schedules", response_model=page_model(resources_pb2.Schedule.DESCRIPTOR), tags=["schedules"]
)
async def list_schedules(
    who: Reader,
    grpc_: Grpc,
    enabled: bool | None = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """The tenant's schedules in id order."""
    req = scheduler_pb2.ListSchedulesRequest(page_size=page_size, page_token=page_token)
    if enabled is not None:
        req.enabled = enabled
    resp = await grpc_.call(who, grpc_.scheduler.ListSchedules, req)
    return _page(list(resp.schedules), resp.next_page_token)


@router.post(
    "/schedules",
    response_model=Schedule,
    status_code=201,
    tags=["schedules"],
    openapi_extra=_idempotency_doc(),
)
async def create_schedule(
    body: ScheduleCreate,
    who: Operator,
    grpc_: Grpc,
    why: Annotated[OperatorReason, Depends(optional_reason)],
) -> dict[str, Any]:
    """Register a cron schedule (UTC) that creates runs from a template (scope orch:operate)."""
    schedule = resources_pb2.Schedule(
        name=body.name,
        cron=body.cron,
        source_id=body.source_id,
        run_template=resources_pb2.RunTemplate(
            name=body.run_template.name,
            project=body.run_template.project,
            labels=body.run_template.labels,
            jobs=[_job_spec(j) for j in body.run_template.jobs],
        ),
        catch_up=enum_number(_CATCH_UP, body.catch_up) if body.catch_up else None,
        overlap=enum_number(_OVERLAP, body.overlap) if body.overlap else None,
        enabled=body.enabled,
    )
    if body.catch_up_window_s is not None:
        schedule.catch_up_window.FromTimedelta(timedelta(seconds=body.catch_up_window_s))
    resp = await grpc_.call(
        who,
        grpc_.scheduler.CreateSchedule,
        scheduler_pb2.CreateScheduleRequest(schedule=schedule, operator=_operator_ctx(why)),
    )
    return to_json(resp.schedule)


@router.get("/schedules/{schedule_id}", response_model=Schedule, tags=["schedules"])
async def get_schedule(schedule_id: str, who: Reader, grpc_: Grpc) -> dict[str, Any]:
    """One schedule with its next and last fire times."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.GetSchedule,
        scheduler_pb2.GetScheduleRequest(schedule_id=schedule_id),
    )
    return to_json(resp.schedule)


@router.patch("/schedules/{schedule_id}", response_model=Schedule, tags=["schedules"])
async def update_schedule(
    schedule_id: str,
    body: ScheduleUpdate,
    who: Operator,
    grpc_: Grpc,
    why: Annotated[OperatorReason, Depends(optional_reason)],
) -> dict[str, Any]:
    """Change a schedule (scope orch:operate), e.g. ``{"enabled": false}`` to stop it."""
    fields = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    if not fields:
        raise ProblemError(400, "nothing to change: send at least one field")
    if "catch_up" in fields:
        fields["catch_up"] = enum_number(_CATCH_UP, fields["catch_up"])
    if "overlap" in fields:
        fields["overlap"] = enum_number(_OVERLAP, fields["overlap"])
    resp = await grpc_.call(
        who,
        grpc_.scheduler.UpdateSchedule,
        scheduler_pb2.UpdateScheduleRequest(
            schedule=resources_pb2.Schedule(id=schedule_id, **fields),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(fields)),
            operator=_operator_ctx(why),
        ),
    )
    return to_json(resp.schedule)


@router.delete(
    "/schedules/{schedule_id}",
    status_code=204,
    response_class=Response,
    tags=["schedules"],
    openapi_extra=_reason_doc(),
)
async def delete_schedule(schedule_id: str, who: Operator, grpc_: Grpc, why: Reason) -> Response:
    """Remove a schedule; runs it created stay (scope orch:operate; reason required)."""
    await grpc_.call(
        who,
        grpc_.scheduler.DeleteSchedule,
        scheduler_pb2.DeleteScheduleRequest(schedule_id=schedule_id, operator=_operator_ctx(why)),
    )
    return Response(status_code=204)


# ------------------------------------------------------------------------ backfills, watermarks


def backfiller(who: Annotated[Caller, Depends(caller)]) -> Caller:
    auth.require_scope(who, auth.BACKFILL)
    return who


Backfiller = Annotated[Caller, Depends(backfiller)]


@router.get(
    "/watermarks",
    response_model=page_model(resources_pb2.Watermark.DESCRIPTOR),
    tags=["backfills"],
)
async def list_watermarks(
    who: Reader,
    grpc_: Grpc,
    source_id: Annotated[str, Query(max_length=64)] = "",
    job_type: Annotated[str, Query(max_length=200)] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """Event-time watermarks of the tenant's sources."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.ListWatermarks,
        scheduler_pb2.ListWatermarksRequest(
            source_id=source_id, job_type=job_type, page_size=page_size, page_token=page_token
        ),
    )
    return _page(list(resp.watermarks), resp.next_page_token)


@router.get(
    "/backfills", response_model=page_model(resources_pb2.Backfill.DESCRIPTOR), tags=["backfills"]
)
async def list_backfills(
    who: Reader,
    grpc_: Grpc,
    source_id: Annotated[str, Query(max_length=64)] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """The tenant's backfills with their progress, in id order."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.ListBackfills,
        scheduler_pb2.ListBackfillsRequest(
            source_id=source_id, page_size=page_size, page_token=page_token
        ),
    )
    return _page(list(resp.backfills), resp.next_page_token)


@router.post(
    "/backfills",
    response_model=BackfillCreated,
    status_code=201,
    tags=["backfills"],
    openapi_extra=CONTROL_DOC,
)
async def create_backfill(
    body: BackfillCreate, who: Backfiller, grpc_: Grpc, why: Reason
) -> dict[str, Any]:
    """Re-process a past range in windows (scope orch:backfill; reason and ticket required by
    the scheduler). ``dry_run`` answers the preview only."""
    req = scheduler_pb2.CreateBackfillRequest(
        source_id=body.source_id,
        job_type=body.job_type,
        payload=_struct(body.payload),
        dry_run=body.dry_run,
        operator=_operator_ctx(why),
    )
    req.range.start.FromDatetime(body.start)
    req.range.end.FromDatetime(body.end)
    req.window_size.FromTimedelta(timedelta(seconds=body.window_size_s))
    if body.priority is not None:
        req.priority = body.priority
    resp = await grpc_.call(who, grpc_.scheduler.CreateBackfill, req)
    return to_json(resp)


@router.get("/backfills/{backfill_id}", response_model=Backfill, tags=["backfills"])
async def get_backfill(backfill_id: str, who: Reader, grpc_: Grpc) -> dict[str, Any]:
    """One backfill with its progress."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.GetBackfill,
        scheduler_pb2.GetBackfillRequest(backfill_id=backfill_id),
    )
    return to_json(resp.backfill)


@router.post(
    "/backfills/{backfill_id}/cancel",
    response_model=Backfill,
    tags=["backfills"],
    openapi_extra=CONTROL_DOC,
)
async def cancel_backfill(
    backfill_id: str, who: Backfiller, grpc_: Grpc, why: Reason
) -> dict[str, Any]:
    """Cancel the unfinished window jobs of a backfill (scope orch:backfill; reason required)."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.CancelBackfill,
        scheduler_pb2.CancelBackfillRequest(backfill_id=backfill_id, operator=_operator_ctx(why)),
    )
    return to_json(resp.backfill)


# ----------------------------------------------------------------------------- job controls


@router.post(
    "/jobs/{job_id}/prioritize", response_model=Job, tags=["jobs"], openapi_extra=CONTROL_DOC
)
async def prioritize_job(
    job_id: str, body: PriorityIn, who: Operator, grpc_: Grpc, why: Reason
) -> dict[str, Any]:
    """Change a waiting job's priority (scope orch:operate; reason required)."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.PrioritizeJob,
        scheduler_pb2.PrioritizeJobRequest(
            job_id=job_id, priority=body.priority, operator=_operator_ctx(why)
        ),
    )
    return to_json(resp.job)


class Prioritized(ApiModel):
    """How many waiting jobs of the run got the new priority."""

    changed_jobs: int


@router.post(
    "/runs/{run_id}/prioritize",
    response_model=Prioritized,
    tags=["runs"],
    openapi_extra=CONTROL_DOC,
)
async def prioritize_run(
    run_id: str, body: PriorityIn, who: Operator, grpc_: Grpc, why: Reason
) -> dict[str, Any]:
    """Change the priority of a run's waiting jobs (scope orch:operate; reason required)."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.PrioritizeRun,
        scheduler_pb2.PrioritizeRunRequest(
            run_id=run_id, priority=body.priority, operator=_operator_ctx(why)
        ),
    )
    return {"changed_jobs": resp.changed_jobs}


@router.post("/jobs/{job_id}/replay", response_model=Job, tags=["jobs"], openapi_extra=CONTROL_DOC)
async def replay_job(job_id: str, who: Operator, grpc_: Grpc, why: Reason) -> dict[str, Any]:
    """Create a new job from a job's payload, with replay_of set (scope orch:operate)."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.ReplayJob,
        scheduler_pb2.ReplayJobRequest(job_id=job_id, operator=_operator_ctx(why)),
    )
    return to_json(resp.job)


@router.post("/jobs/pause", response_model=Quota, tags=["jobs"], openapi_extra=CONTROL_DOC)
async def pause_jobs(body: JobTypeIn, who: Operator, grpc_: Grpc, why: Reason) -> dict[str, Any]:
    """Stop leasing the tenant's jobs, or one job type's; they stay ready (orch:operate)."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.PauseJobs,
        scheduler_pb2.PauseJobsRequest(job_type=body.job_type, operator=_operator_ctx(why)),
    )
    return to_json(resp.quota)


@router.post("/jobs/resume", response_model=Quota, tags=["jobs"], openapi_extra=CONTROL_DOC)
async def resume_jobs(body: JobTypeIn, who: Operator, grpc_: Grpc, why: Reason) -> dict[str, Any]:
    """Lease the tenant's (or one job type's) jobs again (scope orch:operate)."""
    resp = await grpc_.call(
        who,
        grpc_.scheduler.ResumeJobs,
        scheduler_pb2.ResumeJobsRequest(job_type=body.job_type, operator=_operator_ctx(why)),
    )
    return to_json(resp.quota)


# ----------------------------------------------------------------------------- throttles


@router.get(
    "/throttles/buckets",
    response_model=page_model(ratelimit_pb2.Bucket.DESCRIPTOR),
    tags=["throttles"],
)
async def list_buckets(
    who: Reader, grpc_: Grpc, page_size: PageSize = 50, page_token: PageToken = ""
) -> dict[str, Any]:
    """The tenant's token buckets (tokens, configured and effective rate, pause, circuit)."""
    resp = await grpc_.call(
        who,
        grpc_.ratelimit.ListBuckets,
        ratelimit_pb2.ListBucketsRequest(page_size=page_size, page_token=page_token),
    )
    return _page(list(resp.buckets), resp.next_page_token)


@router.put(
    "/throttles/buckets/{host}",
    response_model=Bucket,
    tags=["throttles"],
    openapi_extra=_reason_doc(),
)
async def configure_bucket(
    host: str, body: BucketConfigIn, who: QuotaAdmin, grpc_: Grpc, why: Reason
) -> dict[str, Any]:
    """Set capacity and refill rate of the bucket of one upstream host (scope orch:quota)."""
    resp = await grpc_.call(
        who,
        grpc_.ratelimit.ConfigureBucket,
        ratelimit_pb2.ConfigureBucketRequest(
            key=ratelimit_pb2.BucketKey(tenant=who.principal.tenant, host=host),
            capacity=body.capacity,
            refill_per_second=body.refill_per_second,
            operator=_operator_ctx(why),
        ),
    )
    return to_json(resp.bucket)


@router.get(
    "/throttles/circuits",
    response_model=page_model(ratelimit_pb2.Circuit.DESCRIPTOR),
    tags=["throttles"],
)
async def list_circuits(
    who: Reader,
    grpc_: Grpc,
    state: Annotated[list[CircuitStateLabel], Query(max_length=4)] = [],  # type: ignore[valid-type]  # noqa: B006
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """The tenant's circuit breakers."""
    resp = await grpc_.call(
        who,
        grpc_.ratelimit.ListCircuits,
        ratelimit_pb2.ListCircuitsRequest(
            states=[enum_number(_CIRCUIT_STATE, s) for s in state],
            page_size=page_size,
            page_token=page_token,
        ),
    )
    return _page(list(resp.circuits), resp.next_page_token)


@router.get(
    "/throttles/blackouts",
    response_model=page_model(ratelimit_pb2.Blackout.DESCRIPTOR),
    tags=["throttles"],
)
async def list_blackouts(
    who: Reader,
    grpc_: Grpc,
    source_id: Annotated[str, Query(max_length=64)] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """The tenant's blackout windows."""
    resp = await grpc_.call(
        who,
        grpc_.ratelimit.ListBlackouts,
        ratelimit_pb2.ListBlackoutsRequest(
            source_id=source_id, page_size=page_size, page_token=page_token
        ),
    )
    return _page(list(resp.blackouts), resp.next_page_token)


# ----------------------------------------------------------------------------- dead letter


@router.get(
    "/deadletter",
    response_model=page_model(resources_pb2.DeadLetterEntry.DESCRIPTOR),
    tags=["deadletter"],
)
async def list_dead_letters(
    who: Reader,
    grpc_: Grpc,
    status: DeadLetterStatusLabel | None = None,  # type: ignore[valid-type]
    error_class: ErrorClassLabel | None = None,  # type: ignore[valid-type]
    job_type: Annotated[str, Query(max_length=200)] = "",
    source_id: Annotated[str, Query(max_length=64)] = "",
    retryable: bool | None = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """Dead-letter entries, newest first."""
    req = operations_pb2.ListDeadLettersRequest(
        status=enum_number(_DL_STATUS, status) if status else None,
        error_class=enum_number(_ERROR_CLASS, error_class) if error_class else None,
        job_type=job_type,
        source_id=source_id,
        page_size=page_size,
        page_token=page_token,
    )
    if retryable is not None:
        req.retryable = retryable
    resp = await grpc_.call(who, grpc_.operations.ListDeadLetters, req)
    return _page(list(resp.entries), resp.next_page_token)


@router.get("/deadletter/stats", response_model=DeadLetterStats, tags=["deadletter"])
async def dead_letter_stats(
    who: Reader,
    grpc_: Grpc,
    status: DeadLetterStatusLabel = "pending",  # type: ignore[valid-type]
) -> dict[str, Any]:
    """Dead-letter entries clustered by error class, job type and source."""
    resp = await grpc_.call(
        who,
        grpc_.operations.GetDeadLetterStats,
        operations_pb2.GetDeadLetterStatsRequest(status=enum_number(_DL_STATUS, status)),
    )
    return to_json(resp)


class BulkReplayResult(ApiModel):
    """What a bulk replay did."""

    matched: int
    replayed: list[str]
    failed: list[dict[str, str]]


@router.post(
    "/deadletter/replay",
    response_model=BulkReplayResult,
    tags=["deadletter"],
    openapi_extra=CONTROL_DOC,
)
async def replay_dead_letters(
    body: BulkReplayIn, who: Operator, grpc_: Grpc, why: Reason
) -> dict[str, Any]:
    """Replay up to ``limit`` pending entries matching the filters (scope orch:operate;
    reason required). Each entry is replayed on its own (not atomically): ``replayed`` lists
    the entry ids that went back to ready, ``failed`` the others with the reason."""
    if body.error_class is not None and body.error_class not in enum_labels(_ERROR_CLASS):
        raise ProblemError(
            400,
            f"unknown error_class {body.error_class!r}",
            errors=[{"field": "error_class", "description": "an error class label"}],
        )
    req = operations_pb2.ListDeadLettersRequest(
        status=resources_pb2.DEAD_LETTER_STATUS_PENDING,
        error_class=enum_number(_ERROR_CLASS, body.error_class) if body.error_class else None,
        job_type=body.job_type or "",
        source_id=body.source_id or "",
        page_size=body.limit,
    )
    if body.retryable is not None:
        req.retryable = body.retryable
    listed = await grpc_.call(who, grpc_.operations.ListDeadLetters, req)
    replayed: list[str] = []
    failed: list[dict[str, str]] = []
    for entry in listed.entries:
        try:
            await grpc_.call(
                who,
                grpc_.operations.ReplayDeadLetter,
                operations_pb2.ReplayDeadLetterRequest(
                    entry_id=entry.id, operator=_operator_ctx(why)
                ),
            )
            replayed.append(entry.id)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED):
                raise
            failed.append({"entry_id": entry.id, "error": exc.details() or exc.code().name})
    return {"matched": len(listed.entries), "replayed": replayed, "failed": failed}


@router.get("/deadletter/{entry_id}", response_model=DeadLetterEntry, tags=["deadletter"])
async def get_dead_letter(entry_id: str, who: Reader, grpc_: Grpc) -> dict[str, Any]:
    """One dead-letter entry."""
    resp = await grpc_.call(
        who,
        grpc_.operations.GetDeadLetter,
        operations_pb2.GetDeadLetterRequest(entry_id=entry_id),
    )
    return to_json(resp.entry)


class Replayed(ApiModel):
    """The entry after a replay and its job, back in ready."""

    entry: DeadLetterEntry | None  # type: ignore[valid-type]
    job: Job | None  # type: ignore[valid-type]


@router.post(
    "/deadletter/{entry_id}/replay",
    response_model=Replayed,
    tags=["deadletter"],
    openapi_extra=CONTROL_DOC,
)
async def replay_dead_letter(
    entry_id: str, who: Operator, grpc_: Grpc, why: Reason
) -> dict[str, Any]:
    """Retry the dead job of a pending entry (scope orch:operate; reason required)."""
    resp = await grpc_.call(
        who,
        grpc_.operations.ReplayDeadLetter,
        operations_pb2.ReplayDeadLetterRequest(entry_id=entry_id, operator=_operator_ctx(why)),
    )
    return {"entry": to_json(resp.entry), "job": to_json(resp.job)}


# ----------------------------------------------------------------------------- incidents, overview


@router.get(
    "/incidents",
    response_model=page_model(resources_pb2.Incident.DESCRIPTOR),
    tags=["incidents"],
)
async def list_incidents(
    who: Reader,
    grpc_: Grpc,
    state: IncidentStateLabel | None = None,  # type: ignore[valid-type]
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """Incidents (failure clusters), most recently seen first."""
    resp = await grpc_.call(
        who,
        grpc_.operations.ListIncidents,
        operations_pb2.ListIncidentsRequest(
            state=enum_number(_INCIDENT_STATE, state) if state else None,
            page_size=page_size,
            page_token=page_token,
        ),
    )
    return _page(list(resp.incidents), resp.next_page_token)


@router.get("/overview", response_model=Overview, tags=["overview"])
async def overview(
    who: Reader,
    grpc_: Grpc,
    window_s: Annotated[float, Query(gt=0, le=86400, description="Rate window")] = 900,
) -> dict[str, Any]:
    """Queue depth, throughput, failure rate and SLO burn of the tenant."""
    req = operations_pb2.GetOverviewRequest()
    req.window.FromTimedelta(timedelta(seconds=window_s))
    resp = await grpc_.call(who, grpc_.operations.GetOverview, req)
    return to_json(resp)


# ----------------------------------------------------------------------------- audit, events


@router.get(
    "/audit",
    response_model=page_model(audit_pb2.AuditEntry.DESCRIPTOR),
    tags=["audit"],
)
async def list_audit(
    who: Reader,
    grpc_: Grpc,
    actor: Annotated[str, Query(max_length=200)] = "",
    action: Annotated[str, Query(max_length=200)] = "",
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """Operator actions from the audit chain (AuditService); 503 while it is unavailable."""
    resp = await grpc_.call(
        who,
        grpc_.audit.ListAuditEntries,
        audit_pb2.ListAuditEntriesRequest(
            actor=actor, action=action, page_size=page_size, page_token=page_token
        ),
    )
    return _page(list(resp.entries), resp.next_page_token)


@router.get("/events", response_model=page_model(events_pb2.Event.DESCRIPTOR), tags=["events"])
async def list_events(
    who: Reader,
    grpc_: Grpc,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    run_id: Annotated[str, Query(max_length=64)] = "",
    source_id: Annotated[str, Query(max_length=64)] = "",
    job_id: Annotated[str, Query(max_length=64)] = "",
    type: Annotated[list[str], Query(max_length=32)] = [],  # noqa: B006
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """Past events in seq order (a type ending in "." matches a prefix)."""
    resp = await grpc_.call(
        who,
        grpc_.events.ListEvents,
        events_pb2.ListEventsRequest(
            after_seq=after_seq,
            run_id=run_id,
            source_id=source_id,
            job_id=job_id,
            types=type,
            page_size=page_size,
            page_token=page_token,
        ),
    )
    return _page(list(resp.events), resp.next_page_token)
