"""SchedulerService's operator RPCs: dead-letter queue, incidents, artifacts and the Console
overview (a mixin of :class:`SchedulerServicer`, like the quota methods).

Translation only (STYLE rule 12): requests are checked here, rows become messages here, and
the storage lives in :class:`~orchestrator_pg.DeadLetterStore`, ``IncidentStore``,
``ArtifactStore`` and ``OverviewStore``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from google.protobuf.descriptor import EnumDescriptor

from orchestrator_core import FieldViolation, InvalidArgument, paging
from orchestrator_grpckit import current_principal, enum_label, enum_number, method_scopes
from orchestrator_pg import Row, Stores
from orchestrator_scheduler import _convert as convert
from orchestrator_scheduler import _validate as validate
from orchestrator_scheduler._listing import get_method, list_method
from orchestrator_scheduler._validate import request_context
from stella.orchestrator.v1 import common_pb2, operations_pb2, resources_pb2

_SERVICE_NAME = "stella.orchestrator.v1.SchedulerService"
OPERATIONS_METHOD_SCOPES = method_scopes(
    _SERVICE_NAME,
    {
        "ListDeadLetters": "orch:read",
        "GetDeadLetter": "orch:read",
        "GetDeadLetterStats": "orch:read",
        "ReplayDeadLetter": "orch:operate",
        "ListIncidents": "orch:read",
        "GetIncident": "orch:read",
        "AcknowledgeIncident": "orch:operate",
        "ListArtifacts": "orch:read",
        "GetOverview": "orch:read",
    },
)
DEFAULT_WINDOW = timedelta(minutes=15)
MAX_WINDOW = timedelta(hours=24)
SLO_TARGET = 0.99


def _label(enum: EnumDescriptor, value: int, field: str) -> str | None:
    """The label of an enum value, or None for UNSPECIFIED (no filter).

    Raises:
        InvalidArgument: ``value`` is not a value of ``enum`` (named as request ``field``).
    """
    if value == 0:
        return None
    try:
        return enum_label(enum, value, unknown=None)
    except ValueError:
        known = ", ".join(v.name for v in enum.values if v.number)
        raise InvalidArgument(
            f"unknown {field} value {value}",
            [FieldViolation(field, f"unknown value {value}; one of {known}")],
        ) from None


_DEAD_LETTER_STATUS = resources_pb2.DeadLetterStatus.DESCRIPTOR
_INCIDENT_STATE = resources_pb2.IncidentState.DESCRIPTOR


def dead_letter(row: Row) -> resources_pb2.DeadLetterEntry:
    error_class = convert.error_class(row["error_class"])
    return resources_pb2.DeadLetterEntry(
        id=str(row["id"]),
        tenant=row["tenant"],
        job_id=str(row["job_id"]),
        job_type=row["job_type"],
        source_id=str(row["source_id"] or ""),
        run_id=str(row["run_id"] or ""),
        error_class=error_class,  # type: ignore[arg-type]
        last_error=common_pb2.JobError(
            error_class=error_class,  # type: ignore[arg-type]
            message=row["last_error"],
            retryable=row["retryable"],
            code=row["error_class"],
        ),
        attempts=row["attempts"],
        retryable=row["retryable"],
        failed_at=convert._ts(row["failed_at"]),
        status=enum_number(_DEAD_LETTER_STATUS, row["status"]),
        resolved_by=row["resolved_by"] or "",
        resolution_reason=row["resolution_reason"] or "",
        reason=row["job_reason"] or "",
    )


def incident(row: Row) -> resources_pb2.Incident:
    message = resources_pb2.Incident(
        id=str(row["id"]),
        tenant=row["tenant"],
        error_class=convert.error_class(row["error_class"]),  # type: ignore[arg-type]
        source_id=str(row["source_id"] or ""),
        job_type=row["job_type"],
        state=enum_number(_INCIDENT_STATE, row["state"]),
        reason_code=row["reason_code"],
        first_seen_at=convert._ts(row["first_seen_at"]),
        last_seen_at=convert._ts(row["last_seen_at"]),
        failure_count=row["failure_count"],
        sample_job_ids=[str(j) for j in row["sample_job_ids"]],
        acknowledged_by=row["acknowledged_by"],
        acknowledge_reason=row["acknowledge_reason"],
    )
    if row["resolved_at"] is not None:
        message.resolved_at.FromDatetime(row["resolved_at"])
    if row["acknowledged_at"] is not None:
        message.acknowledged_at.FromDatetime(row["acknowledged_at"])
    return message


def incident_event(row: Row) -> operations_pb2.IncidentEvent:
    return operations_pb2.IncidentEvent(
        seq=row["seq"],
        type=row["type"],
        occurred_at=convert._ts(row["occurred_at"]),
        actor=row["actor_subject"],
        failure_count=int(row["data"].get("failure_count") or 0),
        reason=row["reason"] or "",
    )


def artifact(row: Row) -> resources_pb2.Artifact:
    return resources_pb2.Artifact(
        id=str(row["id"]),
        tenant=row["tenant"],
        job_id=str(row["job_id"]),
        run_id=str(row["run_id"] or ""),
        name=row["name"],
        media_type=row["media_type"],
        size_bytes=row["size_bytes"],
        digest=row["digest"],
        uri=row["uri"],
        created_at=convert._ts(row["created_at"]),
    )


def _dead_letter_filters(request: operations_pb2.ListDeadLettersRequest) -> dict[str, Any]:
    source_id = validate.optional_id_or_raise(request.source_id, "source_id")
    return {
        "status": _label(_DEAD_LETTER_STATUS, request.status, "status"),
        "error_class": _label(common_pb2.ErrorClass.DESCRIPTOR, request.error_class, "error_class"),
        "job_type": request.job_type or None,
        "source_id": source_id,
        "retryable": request.retryable if request.HasField("retryable") else None,
    }


def _artifact_filters(request: operations_pb2.ListArtifactsRequest) -> dict[str, Any]:
    out = validate.Violations()
    job_id = validate.optional_id(request.job_id, "job_id", out)
    run_id = validate.optional_id(request.run_id, "run_id", out)
    if (job_id is None) == (run_id is None) and not out.items:
        out.add("job_id", "set exactly one of job_id and run_id")
    out.raise_if_any("invalid artifact filter")
    return {"job_id": job_id, "run_id": run_id}


class OperationsMethods:
    """Dead letters, incidents, artifacts and the overview of the caller's tenant."""

    stores: Stores
    slo_target: float = SLO_TARGET

    ListDeadLetters = list_method(
        operations_pb2.ListDeadLettersResponse,
        "entries",
        lambda row: dead_letter(row),
        lambda stores: stores.dead_letters.dead_letter_list,
        lambda request: _dead_letter_filters(request),
        paging.by_time("failed_at"),
    )

    GetDeadLetter = get_method(
        operations_pb2.GetDeadLetterResponse,
        "entry",
        dead_letter,
        lambda stores: stores.dead_letters.dead_letter_get,
        "entry_id",
    )

    async def GetDeadLetterStats(
        self, request: operations_pb2.GetDeadLetterStatsRequest, context: Any
    ) -> Any:
        principal = current_principal()
        status = _label(_DEAD_LETTER_STATUS, request.status, "status") or "pending"
        rows = await self.stores.dead_letters.dead_letter_clusters(principal.tenant, status)
        by_class: dict[str, int] = {}
        clusters = []
        for row in rows:
            by_class[row["error_class"]] = by_class.get(row["error_class"], 0) + row["count"]
            clusters.append(
                operations_pb2.DeadLetterCluster(
                    error_class=convert.error_class(row["error_class"]),  # type: ignore[arg-type]
                    job_type=row["job_type"],
                    source_id=str(row["source_id"] or ""),
                    count=row["count"],
                    retryable_count=row["retryable_count"],
                    first_failed_at=convert._ts(row["first_failed_at"]),
                    last_failed_at=convert._ts(row["last_failed_at"]),
                    sample_message=row["sample_message"] or "",
                )
            )
        return operations_pb2.GetDeadLetterStatsResponse(
            total=sum(by_class.values()), by_error_class=by_class, clusters=clusters
        )

    async def ReplayDeadLetter(
        self, request: operations_pb2.ReplayDeadLetterRequest, context: Any
    ) -> Any:
        principal = current_principal()
        entry_id = validate.parse_id_or_raise(request.entry_id, "entry_id")
        ctx = request_context(principal, request.operator, reason_required=True)
        entry, job = await self.stores.dead_letters.dead_letter_replay(ctx, entry_id)
        parents = await self.stores.jobs.job_parents([job["id"]])
        return operations_pb2.ReplayDeadLetterResponse(
            entry=dead_letter(entry), job=convert.job(job, parents[job["id"]])
        )

    ListIncidents = list_method(
        operations_pb2.ListIncidentsResponse,
        "incidents",
        lambda row: incident(row),
        lambda stores: stores.incidents.incident_list,
        lambda request: {"state": _label(_INCIDENT_STATE, request.state, "state")},
        paging.by_time("last_seen_at"),
    )

    async def GetIncident(self, request: operations_pb2.GetIncidentRequest, context: Any) -> Any:
        principal = current_principal()
        incident_id = validate.parse_id_or_raise(request.incident_id, "incident_id")
        row = await self.stores.incidents.incident_get(principal.tenant, incident_id)
        timeline = await self.stores.incidents.incident_timeline(principal.tenant, incident_id)
        return operations_pb2.GetIncidentResponse(
            incident=incident(row), timeline=[incident_event(e) for e in timeline]
        )

    async def AcknowledgeIncident(
        self, request: operations_pb2.AcknowledgeIncidentRequest, context: Any
    ) -> Any:
        principal = current_principal()
        incident_id = validate.parse_id_or_raise(request.incident_id, "incident_id")
        ctx = request_context(principal, request.operator, reason_required=True)
        row = await self.stores.incidents.incident_acknowledge(ctx, incident_id)
        return operations_pb2.AcknowledgeIncidentResponse(incident=incident(row))

    ListArtifacts = list_method(
        operations_pb2.ListArtifactsResponse,
        "artifacts",
        lambda row: artifact(row),
        lambda stores: stores.artifacts.artifact_list,
        lambda request: _artifact_filters(request),
    )

    async def GetOverview(self, request: operations_pb2.GetOverviewRequest, context: Any) -> Any:
        principal = current_principal()
        window = DEFAULT_WINDOW
        if request.HasField("window"):
            window = request.window.ToTimedelta()
            if window <= timedelta(0) or window > MAX_WINDOW:
                raise InvalidArgument(
                    "window must be positive and at most 24 hours",
                    [FieldViolation("window", f"got {window.total_seconds()} s")],
                )
        data = await self.stores.overview.overview(principal.tenant, window)
        by_state = data["jobs_by_state"]
        succeeded = int(data.get("succeeded") or 0)
        failed = int(data.get("failed_attempts") or 0)
        finished = succeeded + failed
        failure_rate = failed / finished if finished else 0.0
        budget = 1.0 - self.slo_target
        response = operations_pb2.GetOverviewResponse(
            jobs_by_state=by_state,
            queue_depth=by_state["pending"] + by_state["ready"],
            succeeded_in_window=succeeded,
            dead_in_window=int(data.get("dead") or 0),
            failed_attempts_in_window=failed,
            throughput_per_minute=succeeded / (window.total_seconds() / 60.0),
            failure_rate=failure_rate,
            slo_target=self.slo_target,
            slo_burn_rate=failure_rate / budget if budget > 0 else 0.0,
            dead_letter_pending=int(data.get("dead_letter_pending") or 0),
            active_runs=int(data.get("active_runs") or 0),
            head_seq=int(data.get("head_seq") or 0),
        )
        response.window.FromTimedelta(window)
        response.as_of.FromDatetime(data["now"])
        return response
