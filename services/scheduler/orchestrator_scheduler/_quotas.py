"""Quota RPCs of SchedulerService (CreateQuota, GetQuota, ListQuotas, UpdateQuota,
DeleteQuota), mixed into :class:`~orchestrator_scheduler.SchedulerServicer`.

Writes need scope ``orch:quota`` and ``operator.reason`` (recorded on the quota and in the
audit trail with ``operator.ticket``); reads need ``orch:read``. The backpressure that
``max_queued`` drives lives in :mod:`orchestrator_pg._backpressure`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from orchestrator_grpckit import current_principal
from orchestrator_pg import QUOTA_MUTABLE_FIELDS, QuotaFields, Row, Stores
from orchestrator_scheduler import _validate as validate
from orchestrator_scheduler._listing import get_method, list_method
from orchestrator_scheduler._validate import request_context
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2

QUOTA_SCOPE = "orch:quota"
QUOTA_READ_METHODS = ("GetQuota", "ListQuotas")
QUOTA_WRITE_METHODS = ("CreateQuota", "UpdateQuota", "DeleteQuota")
MAX_QUOTA_VALUE = 1_000_000_000


def quota_fields(quota: resources_pb2.Quota, field: str, paths: Sequence[str]) -> QuotaFields:
    """Validates the fields of ``quota`` named in ``paths`` (limits 0..1e9, 0 = unlimited)."""
    out = validate.Violations()
    if "job_type" in paths and quota.job_type and not validate.JOB_TYPE_RE.match(quota.job_type):
        out.add(
            f"{field}.job_type",
            "job types are lowercase [a-z0-9_.-] starting with a letter, at most 128 "
            "characters; empty sets the whole-tenant quota",
        )
    for name in ("max_active", "max_per_hour", "burst", "max_queued"):
        value = getattr(quota, name)
        if name in paths and not 0 <= value <= MAX_QUOTA_VALUE:
            out.add(f"{field}.{name}", f"must be 0..{MAX_QUOTA_VALUE} (0 = unlimited), got {value}")
    out.raise_if_any(f"invalid {field}")
    return QuotaFields(
        job_type=quota.job_type,
        max_active=quota.max_active,
        max_per_hour=quota.max_per_hour,
        burst=quota.burst,
        max_queued=quota.max_queued,
        paused=quota.paused,
    )


def quota_update_mask(paths: Sequence[str]) -> list[str]:
    return validate.update_mask(paths, QUOTA_MUTABLE_FIELDS, "max_queued")


def quota_message(row: Row) -> resources_pb2.Quota:
    msg = resources_pb2.Quota(
        id=str(row["id"]),
        tenant=row["tenant"],
        job_type=row["job_type"],
        max_active=row["max_active"] or 0,
        max_per_hour=row["max_per_hour"] or 0,
        burst=row["burst"] or 0,
        max_queued=row["max_queued"] or 0,
        paused=row["paused"],
        reason=row["reason"],
        ticket=row["ticket"],
    )
    msg.created_at.FromDatetime(row["created_at"])
    msg.updated_at.FromDatetime(row["updated_at"])
    return msg


class QuotaMethods:
    """The quota RPCs; the servicer provides ``stores``."""

    stores: Stores

    async def CreateQuota(self, request: scheduler_pb2.CreateQuotaRequest, context: Any) -> Any:
        principal = current_principal()
        fields = quota_fields(request.quota, "quota", ("job_type", *QUOTA_MUTABLE_FIELDS))
        row = await self.stores.quotas.quota_create(
            request_context(principal, request.operator, reason_required=True), fields
        )
        return scheduler_pb2.CreateQuotaResponse(quota=quota_message(row))

    GetQuota = get_method(
        scheduler_pb2.GetQuotaResponse,
        "quota",
        quota_message,
        lambda stores: stores.quotas.quota_get,
        "quota_id",
    )

    ListQuotas = list_method(
        scheduler_pb2.ListQuotasResponse,
        "quotas",
        quota_message,
        lambda stores: stores.quotas.quota_list,
        lambda request: {
            "job_type": request.job_type or None,
            "paused": request.paused if request.HasField("paused") else None,
        },
    )

    async def UpdateQuota(self, request: scheduler_pb2.UpdateQuotaRequest, context: Any) -> Any:
        principal = current_principal()
        quota_id = validate.parse_id_or_raise(request.quota.id, "quota.id")
        mask = quota_update_mask(list(request.update_mask.paths))
        fields = quota_fields(request.quota, "quota", mask)
        row = await self.stores.quotas.quota_update(
            request_context(principal, request.operator, reason_required=True),
            quota_id,
            fields,
            mask,
        )
        return scheduler_pb2.UpdateQuotaResponse(quota=quota_message(row))

    async def DeleteQuota(self, request: scheduler_pb2.DeleteQuotaRequest, context: Any) -> Any:
        principal = current_principal()
        quota_id: uuid.UUID = validate.parse_id_or_raise(request.quota_id, "quota_id")
        await self.stores.quotas.quota_delete(
            request_context(principal, request.operator, reason_required=True), quota_id
        )
        return scheduler_pb2.DeleteQuotaResponse()
