"""Backfill RPCs of SchedulerService (CreateBackfill with dry run, GetBackfill,
ListBackfills, CancelBackfill), mixed into :class:`~orchestrator_scheduler.SchedulerServicer`.

Writes need scope ``orch:backfill`` and an operator reason and ticket (audited). Storage and
the window rules are :mod:`orchestrator_pg._backfills`. The preview's duration estimate uses
the tightest limit known here: the tenant's hourly quota for the job type and the source's
token bucket (effective rate, read from Redis when the scheduler has it; a bucket that does
not bind, or an unreachable Redis, leaves it out).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, timedelta
from typing import Any

from orchestrator_core import Clock, SystemClock
from orchestrator_grpckit import Principal, current_principal
from orchestrator_pg import (
    BackfillPlan,
    BackfillRequest,
    NewJob,
    Row,
    Stores,
    TxContext,
)
from orchestrator_redis import BucketKey, BucketStore, OrchestratorRedisError
from orchestrator_scheduler import _convert as convert
from orchestrator_scheduler import _validate as validate
from orchestrator_scheduler._listing import get_method, list_method
from orchestrator_scheduler._validate import request_context
from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2

BACKFILL_SCOPE = "orch:backfill"
BACKFILL_READ_METHODS = ("GetBackfill", "ListBackfills")
BACKFILL_WRITE_METHODS = ("CreateBackfill", "CancelBackfill")
DEFAULT_PRIORITY = -10
MAX_WINDOWS = 100_000
MIN_WINDOW = timedelta(seconds=1)
# A bucket refilling faster than this does not bind (the store's non-binding default).
NON_BINDING_RATE = 1e6

_STATE = {
    "planned": resources_pb2.BACKFILL_STATE_PLANNED,
    "running": resources_pb2.BACKFILL_STATE_RUNNING,
    "succeeded": resources_pb2.BACKFILL_STATE_SUCCEEDED,
    "failed": resources_pb2.BACKFILL_STATE_FAILED,
    "canceled": resources_pb2.BACKFILL_STATE_CANCELED,
}

_log = logging.getLogger("orchestrator_scheduler.backfills")


def _write_ctx(principal: Principal, operator: common_pb2.OperatorContext) -> TxContext:
    out = validate.Violations()
    if not operator.reason.strip():
        out.add("operator.reason", "is required for backfills: say why, e.g. 'NVD outage 3-5 May'")
    if not operator.ticket.strip():
        out.add("operator.ticket", "is required for backfills, e.g. 'OPS-1234'")
    out.raise_if_any("a backfill needs an operator reason and ticket")
    return request_context(principal, operator, reason_required=True)


def backfill_request(request: scheduler_pb2.CreateBackfillRequest) -> BackfillRequest:
    out = validate.Violations()
    source_id = validate.optional_id(request.source_id, "source_id", out)
    if source_id is None and not out.items:
        out.add("source_id", "is required")
    if not validate.JOB_TYPE_RE.match(request.job_type):
        out.add("job_type", "is required and must match ^[a-z][a-z0-9_.-]{0,127}$")
    start = end = None
    if not (request.range.HasField("start") and request.range.HasField("end")):
        out.add("range", "start and end are required (UTC instants, end exclusive)")
    else:
        start = request.range.start.ToDatetime(tzinfo=UTC)
        end = request.range.end.ToDatetime(tzinfo=UTC)
        if end <= start:
            out.add("range.end", "must be after range.start")
    size = request.window_size.ToTimedelta()
    if size < MIN_WINDOW:
        out.add("window_size", "is required: at least 1 s, e.g. 3600s for hourly windows")
    elif (
        start is not None and end is not None and end > start and (end - start) / size > MAX_WINDOWS
    ):
        out.add("window_size", f"splits the range into more than {MAX_WINDOWS} windows")
    priority = request.priority if request.HasField("priority") else DEFAULT_PRIORITY
    if not -1000 <= priority <= 1000:
        out.add("priority", f"must be -1000..1000, got {priority}")
    out.raise_if_any("invalid backfill")
    assert source_id is not None
    assert start is not None
    assert end is not None
    return BackfillRequest(source_id, request.job_type, start, end, size, priority)


def derived_state(row: Row) -> str:
    """The backfill's state from its run (the stored state only says planned/canceled)."""
    if row["state"] == "canceled" or row["run_state"] == "canceled":
        return "canceled"
    if row["run_id"] is None:
        return row["state"]
    if row["run_state"] in ("succeeded", "failed"):
        return str(row["run_state"])
    return "running" if row["started_jobs"] else "planned"


def backfill_message(row: Row) -> resources_pb2.Backfill:
    msg = resources_pb2.Backfill(
        id=str(row["id"]),
        tenant=row["tenant"],
        source_id=str(row["source_id"]),
        job_type=row["job_type"],
        priority=row["priority"],
        state=_STATE[derived_state(row)],
        reason=row["reason"],
        ticket=row["ticket"],
        window_count=row["window_count"],
        job_count=row["jobs"],
        suppressed_window_count=row["suppressed_window_count"],
        succeeded_job_count=row["succeeded_jobs"],
        created_by=row["created_by"],
        run_id=str(row["run_id"]) if row["run_id"] else "",
    )
    msg.range.start.CopyFrom(convert.timestamp(row["range_start"]))
    msg.range.end.CopyFrom(convert.timestamp(row["range_end"]))
    msg.window_size.CopyFrom(convert.duration(row["window_size"]))
    msg.created_at.CopyFrom(convert.timestamp(row["created_at"]))
    msg.updated_at.CopyFrom(convert.timestamp(row["updated_at"]))
    return msg


class BackfillMethods:
    """The backfill RPCs; the servicer provides ``stores``, ``bucket_store``, ``clock``
    and ``max_payload_bytes``."""

    stores: Stores
    bucket_store: BucketStore | None = None
    clock: Clock = SystemClock()
    max_payload_bytes: int

    def _window_jobs(
        self,
        request: scheduler_pb2.CreateBackfillRequest,
        parsed: BackfillRequest,
        backfill_id: uuid.UUID,
        windows: Sequence[tuple[Any, Any]],
    ) -> list[NewJob]:
        out = validate.Violations()
        jobs: list[NewJob] = []
        for start, end in windows:
            label = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            spec = resources_pb2.JobSpec(
                job_type=parsed.job_type,
                source_id=str(parsed.source_id),
                priority=parsed.priority,
                key=f"w-{label}",
                idempotency_key=f"backfill:{backfill_id}:{label}",
                payload=request.payload,
            )
            spec.event_time_window.start.CopyFrom(convert.timestamp(start))
            spec.event_time_window.end.CopyFrom(convert.timestamp(end))
            jobs.append(
                validate.job_spec(spec, "window", out, max_payload_bytes=self.max_payload_bytes)
            )
        out.raise_if_any("invalid backfill payload")
        return jobs

    async def _preview(
        self, tenant: str, parsed: BackfillRequest, plan: BackfillPlan
    ) -> scheduler_pb2.BackfillPreview:
        preview = scheduler_pb2.BackfillPreview(
            window_count=len(plan.windows),
            job_count=len(plan.missing),
            suppressed_window_count=plan.suppressed,
            overlapping_backfill_ids=[
                str(r["id"]) for r in plan.overlapping if r is not plan.identical
            ],
        )
        rates: list[tuple[float, str]] = []
        for row in await self.stores.backfills.backfill_queue_room(tenant, parsed.job_type):
            preview.quota_impact.append(
                scheduler_pb2.BackfillQuotaImpact(
                    job_type=row["job_type"],
                    max_queued=row["max_queued"] or 0,
                    queued=row["queued"],
                    exceeds_max_queued=bool(row["max_queued"])
                    and row["queued"] + len(plan.missing) > row["max_queued"],
                    max_per_hour=row["max_per_hour"] or 0,
                )
            )
            if row["max_per_hour"]:
                scope = f"job type '{row['job_type']}'" if row["job_type"] else "the tenant"
                rates.append(
                    (row["max_per_hour"] / 3600, f"quota of {scope}: {row['max_per_hour']}/h")
                )
        if self.bucket_store is not None:
            try:
                source = await self.stores.sources.source_get(tenant, parsed.source_id)
                state = await self.bucket_store.state(
                    BucketKey(tenant, source["host"]), now=self.clock.now().timestamp()
                )
                if state.effective_refill_per_s < NON_BINDING_RATE:
                    rates.append(
                        (
                            state.effective_refill_per_s,
                            f"bucket {source['host']} {state.effective_refill_per_s:g}/s",
                        )
                    )
            except OrchestratorRedisError as exc:
                _log.warning("backfill estimate without the source's bucket: %s", exc)
        if rates and plan.missing:
            rate, name = min(rates)
            preview.estimated_duration.CopyFrom(
                convert.duration(timedelta(seconds=len(plan.missing) / rate))
            )
            preview.limited_by = name
        return preview

    async def CreateBackfill(
        self, request: scheduler_pb2.CreateBackfillRequest, context: Any
    ) -> Any:
        principal = current_principal()
        ctx = _write_ctx(principal, request.operator)
        parsed = backfill_request(request)
        if request.dry_run:
            await self.stores.sources.source_get(principal.tenant, parsed.source_id)
            plan = await self.stores.backfills.backfill_plan(principal.tenant, parsed)
            # validate the window jobs as the real run would (payload size and shape)
            self._window_jobs(request, parsed, uuid.UUID(int=0), plan.missing[:1])
            return scheduler_pb2.CreateBackfillResponse(
                preview=await self._preview(principal.tenant, parsed, plan)
            )
        row, existing, plan = await self.stores.backfills.backfill_create(
            ctx,
            parsed,
            lambda backfill_id, windows: self._window_jobs(request, parsed, backfill_id, windows),
        )
        return scheduler_pb2.CreateBackfillResponse(
            backfill=backfill_message(row),
            existing=existing,
            preview=await self._preview(principal.tenant, parsed, plan),
        )

    GetBackfill = get_method(
        scheduler_pb2.GetBackfillResponse,
        "backfill",
        backfill_message,
        lambda stores: stores.backfills.backfill_get,
        "backfill_id",
    )

    ListBackfills = list_method(
        scheduler_pb2.ListBackfillsResponse,
        "backfills",
        lambda row: backfill_message(row),
        lambda stores: stores.backfills.backfill_list,
        lambda request: {
            "source_id": validate.optional_id_or_raise(request.source_id, "source_id")
        },
    )

    async def CancelBackfill(
        self, request: scheduler_pb2.CancelBackfillRequest, context: Any
    ) -> Any:
        principal = current_principal()
        ctx = _write_ctx(principal, request.operator)
        backfill_id = validate.parse_id_or_raise(request.backfill_id, "backfill_id")
        row = await self.stores.backfills.backfill_cancel(ctx, backfill_id)
        return scheduler_pb2.CancelBackfillResponse(backfill=backfill_message(row))
