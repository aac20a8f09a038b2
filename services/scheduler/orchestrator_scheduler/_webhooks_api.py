"""WebhookService: the tenant's webhook subscriptions and their delivery log over gRPC.

Translates protobuf to the store's calls and back (STYLE rule 12); the rules are
``orchestrator_core.webhooks``, the storage ``orchestrator_pg.WebhookStore``, the delivery
``_webhooks.WebhookDispatcher``. Writes need ``orch:operate`` and are audited by the store;
secrets leave the service only in the Create and Rotate responses.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchestrator_core import FieldViolation, InvalidArgument, paging
from orchestrator_core.webhooks import validate_subscription
from orchestrator_grpckit import current_principal, method_scopes
from orchestrator_pg import Row, WebhookFields, WebhookStore
from orchestrator_scheduler import _validate as validate
from orchestrator_scheduler._convert import timestamp
from orchestrator_scheduler._validate import request_context
from stella.orchestrator.v1 import webhooks_pb2, webhooks_pb2_grpc
from stella_orchestrator.webhooks import generate_secret

SERVICE_NAME = "stella.orchestrator.v1.WebhookService"
METHOD_SCOPES: dict[str, str] = method_scopes(
    SERVICE_NAME,
    {
        "CreateWebhook": "orch:operate",
        "ListWebhooks": "orch:read",
        "GetWebhook": "orch:read",
        "UpdateWebhook": "orch:operate",
        "DeleteWebhook": "orch:operate",
        "RotateWebhookSecret": "orch:operate",
        "ListWebhookDeliveries": "orch:read",
        "RedeliverWebhook": "orch:operate",
    },
)
DELIVERY_STATES = ("pending", "succeeded", "failed")


def webhook(row: Row) -> webhooks_pb2.Webhook:
    return webhooks_pb2.Webhook(
        id=str(row["id"]),
        url=row["url"],
        event_types=list(row["event_types"]),
        source_id=str(row["source_id"] or ""),
        job_type=row["job_type"] or "",
        description=row["description"],
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        failure_streak=row["failure_streak"],
        rotating=bool(row.get("rotating")),
        create_time=timestamp(row["created_at"]),
        update_time=timestamp(row["updated_at"]),
    )


def delivery(row: Row) -> webhooks_pb2.WebhookDelivery:
    out = webhooks_pb2.WebhookDelivery(
        id=str(row["id"]),
        webhook_id=str(row["webhook_id"]),
        event_id=str(row["event_id"]),
        event_type=row["event_type"],
        event_seq=row["event_seq"],
        state=row["state"],
        attempt=row["attempt"],
        status_code=row["status_code"] or 0,
        latency_ms=row["latency_ms"] or 0,
        error=row["error"],
    )
    if row["state"] == "pending" and row["next_attempt_at"] is not None:
        out.next_attempt_time.CopyFrom(timestamp(row["next_attempt_at"]))
    for a in row.get("attempts", ()):
        item = out.attempts.add(
            attempt=a["attempt"],
            outcome=a["outcome"],
            status_code=a["status_code"] or 0,
            latency_ms=a["latency_ms"] or 0,
            error=a["error"],
            start_time=timestamp(a["started_at"]),
        )
        if a["next_attempt_at"] is not None:
            item.next_attempt_time.CopyFrom(timestamp(a["next_attempt_at"]))
    return out


class WebhookServicer(webhooks_pb2_grpc.WebhookServiceServicer):
    """The WebhookService RPCs over one :class:`WebhookStore`.

    Args:
        store: the webhook store.
        rotation_grace: how long a rotated-out secret keeps signing.
    """

    def __init__(self, store: WebhookStore, *, rotation_grace: timedelta) -> None:
        self.store = store
        self.rotation_grace = rotation_grace

    async def CreateWebhook(self, request: webhooks_pb2.CreateWebhookRequest, context: Any) -> Any:
        validate_subscription(
            url=request.url, event_types=list(request.event_types), description=request.description
        )
        source_id = validate.optional_id_or_raise(request.source_id, "source_id")
        ctx = request_context(current_principal(), request.operator)
        fields = WebhookFields(
            url=request.url,
            event_types=tuple(request.event_types),
            source_id=source_id,
            job_type=request.job_type or None,
            description=request.description,
        )
        row = await self.store.webhook_create(ctx, fields, generate_secret())
        return webhooks_pb2.CreateWebhookResponse(webhook=webhook(row), secret=row["secret"])

    async def ListWebhooks(self, request: webhooks_pb2.ListWebhooksRequest, context: Any) -> Any:
        principal = current_principal()
        size = paging.page_size(request.page_size)
        filters: dict[str, object] = {}
        after = paging.decode_time_token(request.page_token, filters)
        rows = await self.store.webhook_list(principal.tenant, after=after, limit=size + 1)
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            token = paging.encode_token(f"{last['created_at'].isoformat()}|{last['id']}", filters)
        return webhooks_pb2.ListWebhooksResponse(
            webhooks=[webhook(r) for r in rows], next_page_token=token
        )

    async def GetWebhook(self, request: webhooks_pb2.GetWebhookRequest, context: Any) -> Any:
        webhook_id = validate.parse_id_or_raise(request.webhook_id, "webhook_id")
        row = await self.store.webhook_get(current_principal().tenant, webhook_id)
        return webhooks_pb2.GetWebhookResponse(webhook=webhook(row))

    async def UpdateWebhook(self, request: webhooks_pb2.UpdateWebhookRequest, context: Any) -> Any:
        webhook_id = validate.parse_id_or_raise(request.webhook_id, "webhook_id")
        ctx = request_context(current_principal(), request.operator)
        current = await self.store.webhook_get(ctx.tenant, webhook_id)
        url = request.url if request.HasField("url") else None
        types = tuple(request.event_types) or None
        validate_subscription(
            url=url if url is not None else current["url"],
            event_types=list(types or current["event_types"]),
            description=request.description,
        )
        source = request.source_id if request.HasField("source_id") else None
        job_type = request.job_type if request.HasField("job_type") else None
        fields = WebhookFields(
            url=url,
            event_types=types,
            source_id=validate.optional_id_or_raise(source, "source_id") if source else None,
            job_type=job_type or None,
            description=request.description if request.HasField("description") else None,
            enabled=request.enabled if request.HasField("enabled") else None,
            clear_source=source == "",
            clear_job_type=job_type == "",
        )
        row = await self.store.webhook_update(ctx, webhook_id, fields)
        return webhooks_pb2.UpdateWebhookResponse(webhook=webhook(row))

    async def DeleteWebhook(self, request: webhooks_pb2.DeleteWebhookRequest, context: Any) -> Any:
        webhook_id = validate.parse_id_or_raise(request.webhook_id, "webhook_id")
        ctx = request_context(current_principal(), request.operator)
        await self.store.webhook_delete(ctx, webhook_id)
        return webhooks_pb2.DeleteWebhookResponse()

    async def RotateWebhookSecret(
        self, request: webhooks_pb2.RotateWebhookSecretRequest, context: Any
    ) -> Any:
        webhook_id = validate.parse_id_or_raise(request.webhook_id, "webhook_id")
        ctx = request_context(current_principal(), request.operator)
        row = await self.store.webhook_rotate_secret(
            ctx, webhook_id, generate_secret(), self.rotation_grace
        )
        return webhooks_pb2.RotateWebhookSecretResponse(
            webhook=webhook(row),
            secret=row["secret"],
            previous_secret_expire_time=timestamp(row["previous_expires_at"]),
        )

    async def ListWebhookDeliveries(
        self, request: webhooks_pb2.ListWebhookDeliveriesRequest, context: Any
    ) -> Any:
        principal = current_principal()
        webhook_id = validate.parse_id_or_raise(request.webhook_id, "webhook_id")
        if request.state and request.state not in DELIVERY_STATES:
            raise InvalidArgument(
                "unknown delivery state",
                [FieldViolation("state", f"one of {', '.join(DELIVERY_STATES)} or empty")],
            )
        size = paging.page_size(request.page_size)
        filters = {"webhook_id": str(webhook_id), "state": request.state}
        after = paging.decode_seq_token(request.page_token, filters) or None
        await self.store.webhook_get(principal.tenant, webhook_id)  # NotFound when absent
        rows = await self.store.webhook_delivery_list(
            principal.tenant,
            webhook_id,
            state=request.state or None,
            after_seq=after,
            limit=size + 1,
        )
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            token = paging.encode_token(int(rows[-1]["event_seq"]), filters)
        return webhooks_pb2.ListWebhookDeliveriesResponse(
            deliveries=[delivery(r) for r in rows], next_page_token=token
        )

    async def RedeliverWebhook(
        self, request: webhooks_pb2.RedeliverWebhookRequest, context: Any
    ) -> Any:
        delivery_id = validate.parse_id_or_raise(request.delivery_id, "delivery_id")
        ctx = request_context(current_principal(), request.operator)
        await self.store.webhook_redeliver(ctx, delivery_id)
        row = await self.store.webhook_delivery_get(ctx.tenant, delivery_id)
        return webhooks_pb2.RedeliverWebhookResponse(delivery=delivery(row))
