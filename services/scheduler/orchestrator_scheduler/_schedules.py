"""Schedule RPCs of SchedulerService (CreateSchedule, GetSchedule, ListSchedules,
UpdateSchedule, DeleteSchedule), mixed into :class:`~orchestrator_scheduler.SchedulerServicer`.

Writes need ``orch:operate`` and are audited with the operator's reason and ticket; reads
need ``orch:read``. The template is validated like a CreateRun request when it is stored,
so a schedule never fires a run that would be refused. Firing is
:mod:`orchestrator_scheduler._firing`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor

from orchestrator_core import Clock, SystemClock, new_id, paging
from orchestrator_core.redaction import redact_value
from orchestrator_grpckit import current_principal, enum_label, enum_number
from orchestrator_pg import SCHEDULE_MUTABLE_FIELDS, Row, ScheduleFields, Stores
from orchestrator_scheduler import _convert as convert
from orchestrator_scheduler import _firing as firing
from orchestrator_scheduler import _validate as validate
from orchestrator_scheduler._listing import get_method, list_method
from orchestrator_scheduler._validate import request_context
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2

SCHEDULE_READ_METHODS = ("GetSchedule", "ListSchedules", "ListWatermarks")
SCHEDULE_WRITE_METHODS = ("CreateSchedule", "UpdateSchedule", "DeleteSchedule")
MAX_JOBS_PER_TEMPLATE = 10_000

_CATCH_UP = resources_pb2.CatchUpPolicy.DESCRIPTOR
_OVERLAP = resources_pb2.OverlapPolicy.DESCRIPTOR


def _policy(enum: EnumDescriptor, value: int, default: str) -> str:
    """The stored label of a policy; ``default`` for UNSPECIFIED (and unknown numbers)."""
    label = enum_label(enum, value)
    return default if label == "unspecified" else label


def schedule_fields(
    schedule: resources_pb2.Schedule, paths: Sequence[str], *, max_payload_bytes: int
) -> ScheduleFields:
    """Validates the fields of ``schedule`` named in ``paths`` (all of them on create)."""
    out = validate.Violations()
    wanted = set(paths)
    cron = schedule.cron
    if "name" in wanted and not validate.SOURCE_NAME_RE.match(schedule.name):
        out.add("schedule.name", "is required and must match ^[a-z0-9][a-z0-9._-]{0,62}$")
    if "cron" in wanted:
        try:
            cron = firing.check_cron(schedule.cron, "schedule.cron")
        except validate.InvalidArgument as exc:
            out.merge(exc)
    source_id = (
        validate.optional_id(schedule.source_id, "schedule.source_id", out)
        if "source_id" in wanted
        else None
    )
    template: dict[str, Any] = {}
    if "run_template" in wanted:
        jobs = schedule.run_template.jobs
        if len(jobs) > MAX_JOBS_PER_TEMPLATE:
            out.add("schedule.run_template.jobs", f"at most {MAX_JOBS_PER_TEMPLATE} jobs")
        else:
            try:
                validate.job_batch(
                    jobs,
                    "schedule.run_template.jobs",
                    max_payload_bytes=max_payload_bytes,
                )
            except validate.InvalidArgument as exc:
                out.merge(exc)
        template = json_format.MessageToDict(schedule.run_template)
    window: timedelta | None = None
    if "catch_up_window" in wanted and schedule.HasField("catch_up_window"):
        window = schedule.catch_up_window.ToTimedelta()
        if window <= timedelta(0):
            out.add("schedule.catch_up_window", "must be positive, or unset for no limit")
    out.raise_if_any("invalid schedule")
    return ScheduleFields(
        name=schedule.name,
        cron=cron,
        source_id=source_id,
        run_template=template,
        catch_up=_policy(_CATCH_UP, schedule.catch_up, "one"),
        catch_up_window=window,
        overlap=_policy(_OVERLAP, schedule.overlap, "skip"),
        enabled=schedule.enabled,
    )


def schedule_message(row: Row) -> resources_pb2.Schedule:
    msg = resources_pb2.Schedule(
        id=str(row["id"]),
        tenant=row["tenant"],
        name=row["name"],
        cron=row["cron"],
        source_id=str(row["source_id"]) if row["source_id"] else "",
        catch_up=enum_number(_CATCH_UP, row["catch_up"]),
        overlap=enum_number(_OVERLAP, row["overlap"]),
        enabled=row["enabled"],
    )
    # a read is a display: template payloads and labels leave redacted, as jobs' do
    json_format.ParseDict(redact_value(row["run_template"]), msg.run_template)
    if row["catch_up_window"] is not None:
        msg.catch_up_window.CopyFrom(convert.duration(row["catch_up_window"]))
    for name in ("next_fire_at", "last_fire_at", "created_at", "updated_at"):
        if row[name] is not None:
            getattr(msg, name).CopyFrom(convert.timestamp(row[name]))
    return msg


class ScheduleMethods:
    """The schedule RPCs; the servicer provides ``stores``, ``clock`` and
    ``max_payload_bytes``."""

    stores: Stores
    clock: Clock = SystemClock()
    max_payload_bytes: int

    async def CreateSchedule(
        self, request: scheduler_pb2.CreateScheduleRequest, context: Any
    ) -> Any:
        principal = current_principal()
        fields = schedule_fields(
            request.schedule, SCHEDULE_MUTABLE_FIELDS, max_payload_bytes=self.max_payload_bytes
        )
        ctx = request_context(principal, request.operator)
        next_fire = firing.next_after(fields.cron, self.clock.now()) if fields.enabled else None
        row = await self.stores.schedules.schedule_create(
            ctx, uuid.UUID(new_id(self.clock)), fields, next_fire
        )
        return scheduler_pb2.CreateScheduleResponse(schedule=schedule_message(row))

    GetSchedule = get_method(
        scheduler_pb2.GetScheduleResponse,
        "schedule",
        schedule_message,
        lambda stores: stores.schedules.schedule_get,
        "schedule_id",
    )

    ListSchedules = list_method(
        scheduler_pb2.ListSchedulesResponse,
        "schedules",
        schedule_message,
        lambda stores: stores.schedules.schedule_list,
        lambda request: {"enabled": request.enabled if request.HasField("enabled") else None},
    )

    async def UpdateSchedule(
        self, request: scheduler_pb2.UpdateScheduleRequest, context: Any
    ) -> Any:
        principal = current_principal()
        schedule_id = validate.parse_id_or_raise(request.schedule.id, "schedule.id")
        # repeats are dropped before the check, so a violation's index is in the deduped list
        paths = validate.update_mask(
            list(dict.fromkeys(request.update_mask.paths)), SCHEDULE_MUTABLE_FIELDS, "cron"
        )
        fields = schedule_fields(request.schedule, paths, max_payload_bytes=self.max_payload_bytes)
        ctx = request_context(principal, request.operator)
        next_fire = None
        if "cron" in paths or ("enabled" in paths and fields.enabled):
            current = await self.stores.schedules.schedule_get(principal.tenant, schedule_id)
            cron = fields.cron if "cron" in paths else current["cron"]
            next_fire = firing.next_after(cron, self.clock.now())
        row = await self.stores.schedules.schedule_update(
            ctx, schedule_id, fields, paths, next_fire
        )
        return scheduler_pb2.UpdateScheduleResponse(schedule=schedule_message(row))

    async def DeleteSchedule(
        self, request: scheduler_pb2.DeleteScheduleRequest, context: Any
    ) -> Any:
        principal = current_principal()
        schedule_id = validate.parse_id_or_raise(request.schedule_id, "schedule_id")
        await self.stores.schedules.schedule_delete(
            request_context(principal, request.operator), schedule_id
        )
        return scheduler_pb2.DeleteScheduleResponse()

    ListWatermarks = list_method(
        scheduler_pb2.ListWatermarksResponse,
        "watermarks",
        lambda row: watermark_message(row),
        lambda stores: stores.schedules.watermark_list,
        lambda request: {
            "source_id": validate.optional_id_or_raise(request.source_id, "source_id"),
            "job_type": request.job_type or None,
        },
        paging.by_text(lambda row: f"{row['source_id']}|{row['job_type']}"),
    )


def watermark_message(row: Row) -> resources_pb2.Watermark:
    msg = resources_pb2.Watermark(
        tenant=row["tenant"],
        source_id=str(row["source_id"]),
        job_type=row["job_type"],
        last_job_id=str(row["last_job_id"]) if row["last_job_id"] else "",
    )
    msg.high_watermark.CopyFrom(convert.timestamp(row["high_watermark"]))
    msg.updated_at.CopyFrom(convert.timestamp(row["updated_at"]))
    return msg
