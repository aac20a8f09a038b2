"""SchedulerService: translates protobuf ↔ store calls (STYLE rule 12).

The tenant always comes from the caller's token (``current_principal()``); scopes are
checked by the server before a method runs (``METHOD_SCOPES``); domain errors become gRPC
statuses in the one error interceptor of orchestrator_grpckit.
"""

from __future__ import annotations

import heapq
import uuid
from functools import partial
from typing import Any

from orchestrator_core import Clock, SystemClock, paging
from orchestrator_grpckit import Principal, current_principal, current_trace, method_scopes
from orchestrator_pg import Stores
from orchestrator_redis import BucketStore
from orchestrator_scheduler import _backfills as backfills
from orchestrator_scheduler import _controls as controls
from orchestrator_scheduler import _convert as convert
from orchestrator_scheduler import _operations as operations
from orchestrator_scheduler import _quotas as quotas
from orchestrator_scheduler import _schedules as schedules
from orchestrator_scheduler import _validate as validate
from orchestrator_scheduler._listing import get_method, list_method
from orchestrator_scheduler._validate import request_context
from stella.orchestrator.v1 import scheduler_pb2, scheduler_pb2_grpc

SERVICE_NAME = "stella.orchestrator.v1.SchedulerService"
_READ = "orch:read"
_OPERATE = "orch:operate"
METHOD_SCOPES: dict[str, str] = (
    method_scopes(
        SERVICE_NAME,
        {
            "CreateSource": _OPERATE,
            "GetSource": _READ,
            "ListSources": _READ,
            "UpdateSource": _OPERATE,
            "DeleteSource": _OPERATE,
            "CreateRun": _OPERATE,
            "GetRun": _READ,
            "ListRuns": _READ,
            "GetRunDag": _READ,
            "CancelRun": _OPERATE,
            "SubmitJob": _OPERATE,
            "SubmitJobs": _OPERATE,
            "GetJob": _READ,
            "ListJobs": _READ,
            "CancelJob": _OPERATE,
            "RetryJob": _OPERATE,
            "ListJobEvents": _READ,
            **dict.fromkeys(quotas.QUOTA_READ_METHODS, _READ),
            **dict.fromkeys(quotas.QUOTA_WRITE_METHODS, quotas.QUOTA_SCOPE),
            **dict.fromkeys(schedules.SCHEDULE_READ_METHODS, _READ),
            **dict.fromkeys(schedules.SCHEDULE_WRITE_METHODS, _OPERATE),
            **dict.fromkeys(backfills.BACKFILL_READ_METHODS, _READ),
            **dict.fromkeys(backfills.BACKFILL_WRITE_METHODS, backfills.BACKFILL_SCOPE),
            **dict.fromkeys(controls.CONTROL_METHODS, _OPERATE),
        },
    )
    | operations.OPERATIONS_METHOD_SCOPES
)


class SchedulerServicer(
    quotas.QuotaMethods,
    schedules.ScheduleMethods,
    backfills.BackfillMethods,
    controls.ControlMethods,
    operations.OperationsMethods,
    scheduler_pb2_grpc.SchedulerServiceServicer,
):
    """Sources, runs with their DAG, jobs, quotas, schedules, watermarks, backfills, controls
    and the operator reads, each over its named store in ``stores`` (every job insert goes
    through the ``max_queued`` backpressure check)."""

    def __init__(
        self,
        stores: Stores,
        *,
        max_payload_bytes: int = validate.MAX_PAYLOAD_BYTES,
        clock: Clock | None = None,
        bucket_store: BucketStore | None = None,
    ):
        self.stores = stores
        self.max_payload_bytes = max_payload_bytes
        self.bucket_store = bucket_store
        self.clock = clock or SystemClock()

    # ------------------------------------------------------------- sources

    async def CreateSource(self, request: scheduler_pb2.CreateSourceRequest, context: Any) -> Any:
        principal = current_principal()
        fields = validate.source_fields(request.source, "source", validate.SOURCE_MUTABLE_FIELDS)
        fields = validate.pause_fields(fields, request.source.paused, request.operator)
        row = await self.stores.sources.source_create(
            request_context(principal, request.operator), fields
        )
        return scheduler_pb2.CreateSourceResponse(source=convert.source(row))

    GetSource = get_method(
        scheduler_pb2.GetSourceResponse,
        "source",
        convert.source,
        lambda stores: stores.sources.source_get,
        "source_id",
    )

    ListSources = list_method(
        scheduler_pb2.ListSourcesResponse,
        "sources",
        convert.source,
        lambda stores: stores.sources.source_list,
        lambda request: {
            "source_type": request.source_type or None,
            "enabled": request.enabled if request.HasField("enabled") else None,
        },
    )

    async def UpdateSource(self, request: scheduler_pb2.UpdateSourceRequest, context: Any) -> Any:
        principal = current_principal()
        source_id = validate.parse_id_or_raise(request.source.id, "source.id")
        mask = validate.update_mask(list(request.update_mask.paths))
        fields = validate.source_fields(request.source, "source", mask)
        if "paused" in mask:
            # pausing and resuming are operator actions: the reason and ticket go with them
            fields = validate.pause_fields(
                fields, request.source.paused, request.operator, required=True
            )
            mask = [*mask, "paused_reason", "paused_ticket"]
        row = await self.stores.sources.source_update(
            request_context(principal, request.operator),
            source_id,
            fields,
            list(dict.fromkeys(mask)),
            expected_version=request.source.version,
        )
        return scheduler_pb2.UpdateSourceResponse(source=convert.source(row))

    async def DeleteSource(self, request: scheduler_pb2.DeleteSourceRequest, context: Any) -> Any:
        principal = current_principal()
        source_id = validate.parse_id_or_raise(request.source_id, "source_id")
        await self.stores.sources.source_delete(
            request_context(principal, request.operator), source_id
        )
        return scheduler_pb2.DeleteSourceResponse()

    # ------------------------------------------------------------- runs

    async def CreateRun(self, request: scheduler_pb2.CreateRunRequest, context: Any) -> Any:
        principal = current_principal()
        run = validate.new_run(
            request.project,
            request.name,
            request.source_id,
            request.correlation_id,
            request.idempotency_key,
            dict(request.labels),
        )
        jobs = validate.job_batch(
            request.jobs,
            "jobs",
            max_payload_bytes=self.max_payload_bytes,
            trace=current_trace(),
        )
        created = await self.stores.runs.run_create(request_context(principal), run, jobs)
        run_id = created.run["id"]
        counts = await self.stores.runs.run_job_counts(principal.tenant, [run_id])
        parents = await self.stores.jobs.job_parents([j["id"] for j in created.jobs])
        return scheduler_pb2.CreateRunResponse(
            run=convert.run(created.run, counts[run_id]),
            jobs=[convert.job(j, parents[j["id"]]) for j in created.jobs],
            existing=created.existing,
        )

    async def GetRun(self, request: scheduler_pb2.GetRunRequest, context: Any) -> Any:
        principal = current_principal()
        run_id = validate.parse_id_or_raise(request.run_id, "run_id")
        row = await self.stores.runs.run_get(principal.tenant, run_id)
        counts = await self.stores.runs.run_job_counts(principal.tenant, [run_id])
        return scheduler_pb2.GetRunResponse(run=convert.run(row, counts[run_id]))

    async def ListRuns(self, request: scheduler_pb2.ListRunsRequest, context: Any) -> Any:
        principal = current_principal()
        out = validate.Violations()
        source_id = validate.optional_id(request.source_id, "source_id", out)
        out.raise_if_any("invalid filters")
        states = sorted({convert.run_state_name(s) for s in request.states if s})
        # the filters bind the page token and are the store's keyword arguments
        filters: dict[str, Any] = {
            "states": states or None,
            "source_id": source_id,
            "project": request.project or None,
        }
        list_runs = partial(self.stores.runs.run_list, principal.tenant, **filters)
        page, token = await paging.page(request, filters, list_runs)
        counts = await self.stores.runs.run_job_counts(principal.tenant, [r["id"] for r in page])
        return scheduler_pb2.ListRunsResponse(
            runs=[convert.run(r, counts[r["id"]]) for r in page], next_page_token=token
        )

    async def GetRunDag(self, request: scheduler_pb2.GetRunDagRequest, context: Any) -> Any:
        principal = current_principal()
        run_id = validate.parse_id_or_raise(request.run_id, "run_id")
        run_row, jobs, edges = await self.stores.runs.run_dag(principal.tenant, run_id)
        parents: dict[uuid.UUID, list[uuid.UUID]] = {j["id"]: [] for j in jobs}
        for e in edges:
            parents.setdefault(e["child_job_id"], []).append(e["parent_job_id"])
        counts: dict[str, int] = {}
        for j in jobs:
            counts[j["state"]] = counts.get(j["state"], 0) + 1
        return scheduler_pb2.GetRunDagResponse(
            run=convert.run(run_row, counts),
            jobs=[convert.job(j, parents[j["id"]]) for j in topological_order(jobs, parents)],
            edges=[convert.edge(e, run_id, principal.tenant) for e in edges],
        )

    async def CancelRun(self, request: scheduler_pb2.CancelRunRequest, context: Any) -> Any:
        principal = current_principal()
        run_id = validate.parse_id_or_raise(request.run_id, "run_id")
        before = await self.stores.runs.run_job_counts(principal.tenant, [run_id])
        row = await self.stores.runs.run_cancel(
            request_context(principal, request.operator), run_id
        )
        counts = await self.stores.runs.run_job_counts(principal.tenant, [run_id])
        canceled = counts[run_id].get("canceled", 0) - before[run_id].get("canceled", 0)
        return scheduler_pb2.CancelRunResponse(
            run=convert.run(row, counts[run_id]), canceled_job_count=canceled
        )

    # ------------------------------------------------------------- jobs

    async def SubmitJob(self, request: scheduler_pb2.SubmitJobRequest, context: Any) -> Any:
        principal = current_principal()
        submitted = await self._submit(principal, [request.job], "job", request.run_id)
        only = submitted[0]
        parents = await self.stores.jobs.job_parents([only.job["id"]])
        return scheduler_pb2.SubmitJobResponse(
            job=convert.job(only.job, parents[only.job["id"]]), existing=only.existing
        )

    async def SubmitJobs(self, request: scheduler_pb2.SubmitJobsRequest, context: Any) -> Any:
        principal = current_principal()
        submitted = await self._submit(principal, list(request.jobs), "jobs", request.run_id)
        parents = await self.stores.jobs.job_parents([s.job["id"] for s in submitted])
        return scheduler_pb2.SubmitJobsResponse(
            jobs=[convert.job(s.job, parents[s.job["id"]]) for s in submitted],
            existing=[s.existing for s in submitted],
        )

    async def _submit(self, principal: Principal, specs: list[Any], field: str, run_id: str) -> Any:
        out = validate.Violations()
        run = validate.optional_id(run_id, "run_id", out)
        out.raise_if_any("invalid run_id")
        jobs = validate.job_batch(
            specs,
            field,
            allow_external_keys=run is not None,
            max_payload_bytes=self.max_payload_bytes,
            trace=current_trace(),
        )
        return await self.stores.jobs.job_submit(request_context(principal), jobs, run)

    async def GetJob(self, request: scheduler_pb2.GetJobRequest, context: Any) -> Any:
        principal = current_principal()
        job_id = validate.parse_id_or_raise(request.job_id, "job_id")
        row = await self.stores.jobs.job_get(principal.tenant, job_id)
        parents = await self.stores.jobs.job_parents([job_id])
        return scheduler_pb2.GetJobResponse(job=convert.job(row, parents[job_id]))

    async def ListJobs(self, request: scheduler_pb2.ListJobsRequest, context: Any) -> Any:
        principal = current_principal()
        out = validate.Violations()
        run_id = validate.optional_id(request.run_id, "run_id", out)
        source_id = validate.optional_id(request.source_id, "source_id", out)
        out.raise_if_any("invalid filters")
        states = sorted({convert.job_state_name(s) for s in request.states if s})
        filters: dict[str, Any] = {
            "states": states or None,
            "job_type": request.job_type or None,
            "run_id": run_id,
            "source_id": source_id,
        }
        list_jobs = partial(self.stores.jobs.job_list, principal.tenant, **filters)
        page, token = await paging.page(request, filters, list_jobs)
        parents = await self.stores.jobs.job_parents([r["id"] for r in page])
        return scheduler_pb2.ListJobsResponse(
            jobs=[convert.job(r, parents[r["id"]]) for r in page], next_page_token=token
        )

    async def CancelJob(self, request: scheduler_pb2.CancelJobRequest, context: Any) -> Any:
        principal = current_principal()
        job_id = validate.parse_id_or_raise(request.job_id, "job_id")
        row = await self.stores.jobs.job_cancel(
            request_context(principal, request.operator), job_id
        )
        parents = await self.stores.jobs.job_parents([job_id])
        return scheduler_pb2.CancelJobResponse(job=convert.job(row, parents[job_id]))

    async def RetryJob(self, request: scheduler_pb2.RetryJobRequest, context: Any) -> Any:
        principal = current_principal()
        job_id = validate.parse_id_or_raise(request.job_id, "job_id")
        row = await self.stores.jobs.job_retry(request_context(principal, request.operator), job_id)
        parents = await self.stores.jobs.job_parents([job_id])
        return scheduler_pb2.RetryJobResponse(job=convert.job(row, parents[job_id]))

    async def ListJobEvents(self, request: scheduler_pb2.ListJobEventsRequest, context: Any) -> Any:
        principal = current_principal()
        job_id = validate.parse_id_or_raise(request.job_id, "job_id")
        filters = {"job_id": str(job_id)}
        rows, token = await paging.page(
            request,
            filters,
            partial(self.stores.jobs.job_events, principal.tenant, job_id),
            paging.BY_SEQ,
        )
        return scheduler_pb2.ListJobEventsResponse(
            events=[convert.event(r) for r in rows], next_page_token=token
        )


def topological_order(jobs: list[Any], parents: dict[uuid.UUID, list[uuid.UUID]]) -> list[Any]:
    """Jobs with every parent before its children; ties broken by key, then id (Kahn's
    algorithm over a heap), so the order is stable for the same DAG."""
    by_id = {j["id"]: j for j in jobs}
    waiting = {jid: sum(1 for p in parents.get(jid, ()) if p in by_id) for jid in by_id}
    children: dict[uuid.UUID, list[uuid.UUID]] = {jid: [] for jid in by_id}
    for jid in by_id:
        for p in parents.get(jid, ()):
            if p in by_id:
                children[p].append(jid)
    heap = [(by_id[jid]["key"], jid) for jid, n in waiting.items() if n == 0]
    heapq.heapify(heap)
    ordered = []
    while heap:
        _, jid = heapq.heappop(heap)
        ordered.append(by_id[jid])
        for child in children[jid]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(heap, (by_id[child]["key"], child))
    return ordered
