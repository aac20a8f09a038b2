"""``/insights``: what the Console charts and searches that the resource lists do not
answer — failures per source and hour (the heatmap), SLO burn over 1 h / 6 h / 3 d, quota
usage, and jobs found by error class and time range. Read from PostgreSQL by the gateway
itself (``orchestrator_pg``'s public stores, isolated to the caller's tenant by row-level
security), like the idempotency records; the SLO target is the scheduler's (GetOverview), so
burn means the same everywhere.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel

from orchestrator_gateway._problems import ProblemError
from orchestrator_gateway._routes._deps import (
    Grpc,
    PageSize,
    PageToken,
    Reader,
    Stores,
    Text200,
    labels,
    new_router,
)
from orchestrator_pg import JobSearch, Row
from stella.orchestrator.v1 import common_pb2, operations_pb2

router = new_router()
TAGS: list[Any] = ["insights"]
HEATMAP_MAX_HOURS = 168  # a week of hourly columns
SLO_WINDOWS = (("1h", timedelta(hours=1)), ("6h", timedelta(hours=6)), ("3d", timedelta(days=3)))
JobStateLabel = labels(common_pb2.JobState.DESCRIPTOR)
ErrorClassLabel = labels(common_pb2.ErrorClass.DESCRIPTOR)


class HeatmapRow(BaseModel):
    """One source's failed and finished attempts per hour (aligned with ``hours``)."""

    source_id: str
    source_name: str
    failures: list[int]
    attempts: list[int]


class FailureHeatmap(BaseModel):
    """Failed attempts per source and UTC hour over [since, until)."""

    since: datetime
    until: datetime
    hours: list[datetime]
    rows: list[HeatmapRow]


class SloWindow(BaseModel):
    """Attempt outcomes over one window ending now and the error budget's burn rate (1.0
    spends the budget exactly over the window; above it, faster)."""

    window: str
    window_s: float
    succeeded: int
    dead: int
    failed_attempts: int
    failure_rate: float
    burn_rate: float


class SloBurn(BaseModel):
    """Burn of the attempt success SLO over 1 h, 6 h and 3 d."""

    target: float
    as_of: datetime
    windows: list[SloWindow]


class JobSummary(BaseModel):
    """A job as the job list shows it (no payload or result: GET /jobs/{job_id} has them)."""

    id: str
    key: str
    job_type: str
    state: str
    reason: str
    run_id: str | None
    source_id: str | None
    attempt: int
    max_attempts: int
    priority: int
    last_error_class: str | None
    last_error_message: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class JobSummaryPage(BaseModel):
    """A page of jobs; ``next_page_token`` is empty on the last page."""

    items: list[JobSummary]
    next_page_token: str


@router.get("/insights/failure-heatmap", response_model=FailureHeatmap, tags=TAGS)
async def failure_heatmap(
    who: Reader,
    stores: Stores,
    hours: Annotated[int, Query(ge=1, le=HEATMAP_MAX_HOURS, description="Hours back")] = 24,
) -> dict[str, Any]:
    """Failed and finished attempts per source and UTC hour over the last ``hours`` (the
    current hour included); a cell links to ``/insights/jobs?failed_in_range=true``."""
    until = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = until - timedelta(hours=hours)
    columns = [since + timedelta(hours=i) for i in range(hours)]
    index = {hour: i for i, hour in enumerate(columns)}
    rows: dict[str, dict[str, Any]] = {}
    for cell in await stores.overview.failure_heatmap(who.principal.tenant, since, until):
        key = str(cell["source_id"] or "")
        row = rows.setdefault(
            key,
            {
                "source_id": key,
                "source_name": cell["source_name"] or key or "(no source)",
                "failures": [0] * hours,
                "attempts": [0] * hours,
            },
        )
        i = index[cell["hour"].astimezone(UTC)]
        row["failures"][i] = int(cell["failures"])
        row["attempts"][i] = int(cell["attempts"])
    return {"since": since, "until": until, "hours": columns, "rows": list(rows.values())}


@router.get("/insights/slo", response_model=SloBurn, tags=TAGS)
async def slo_burn(who: Reader, stores: Stores, grpc_: Grpc) -> dict[str, Any]:
    """Burn rate of the attempt success SLO over 1 h, 6 h and 3 d (multi-window alerting:
    a fast burn over both 1 h and 6 h pages; a slow one over 3 d opens a ticket)."""
    overview = await grpc_.call(
        who, grpc_.operations.GetOverview, operations_pb2.GetOverviewRequest()
    )
    budget = 1.0 - overview.slo_target
    now, outcomes = await stores.overview.outcomes_over(
        who.principal.tenant, [window for _, window in SLO_WINDOWS]
    )
    windows = []
    for (name, window), counts in zip(SLO_WINDOWS, outcomes, strict=True):
        succeeded = int(counts.get("succeeded") or 0)
        failed = int(counts.get("failed_attempts") or 0)
        rate = failed / (succeeded + failed) if succeeded + failed else 0.0
        windows.append(
            {
                "window": name,
                "window_s": window.total_seconds(),
                "succeeded": succeeded,
                "dead": int(counts.get("dead") or 0),
                "failed_attempts": failed,
                "failure_rate": rate,
                "burn_rate": rate / budget if budget > 0 else 0.0,
            }
        )
    return {"target": overview.slo_target, "as_of": now, "windows": windows}


class QuotaUsage(BaseModel):
    """One quota's usage now, counted as the claim counts it: leased jobs (against
    max_active), pending + ready ones (max_queued) and the hourly bucket's tokens left
    (max_per_hour; null without an hourly cap)."""

    quota_id: str
    job_type: str
    active: int
    queued: int
    hourly_tokens_left: float | None


class QuotaUsages(BaseModel):
    """Every quota of the tenant with its usage."""

    items: list[QuotaUsage]


@router.get("/insights/quota-usage", response_model=QuotaUsages, tags=TAGS)
async def quota_usage(who: Reader, stores: Stores) -> dict[str, Any]:
    """Each quota's usage now, beside its limits (GET /quotas)."""
    rows = await stores.quotas.quota_usage_list(who.principal.tenant)
    return {"items": [{**row, "quota_id": str(row["quota_id"])} for row in rows]}


@router.get("/insights/jobs", response_model=JobSummaryPage, tags=TAGS)
async def search_jobs(
    who: Reader,
    stores: Stores,
    state: Annotated[list[JobStateLabel], Query(max_length=8)] = [],  # type: ignore[valid-type]  # noqa: B006
    job_type: Text200 = "",
    source_id: uuid.UUID | None = None,
    error_class: ErrorClassLabel | None = None,  # type: ignore[valid-type]
    since: datetime | None = None,
    until: datetime | None = None,
    failed_in_range: Annotated[
        bool, Query(description="The range is of failed attempts, not of creation")
    ] = False,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> dict[str, Any]:
    """The tenant's jobs in id order by state, type, source, last error class and time range
    (of creation, or with ``failed_in_range`` of failed attempts): the Console's job list."""
    try:
        after = uuid.UUID(page_token) if page_token else None
    except ValueError:
        raise ProblemError(400, "page_token is not one this list returned") from None
    search = JobSearch(
        states=tuple(state),
        job_type=job_type or None,
        source_id=source_id,
        error_class=error_class,
        since=since,
        until=until,
        failed_in_range=failed_in_range,
        after_id=after,
        limit=page_size,
    )
    rows = await stores.jobs.job_search(who.principal.tenant, search)
    items = [_summary(row) for row in rows]
    more = len(rows) == page_size
    return {"items": items, "next_page_token": items[-1]["id"] if more else ""}


def _summary(row: Row) -> dict[str, Any]:
    summary = {name: row[name] for name in JobSummary.model_fields}
    for name in ("id", "run_id", "source_id"):
        summary[name] = str(row[name]) if row[name] is not None else None
    return summary
