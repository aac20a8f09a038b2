"""``/webhooks``: a tenant's webhook subscriptions and their delivery log (WebhookService,
docs/webhooks.md). The secret is in the answers of create and rotate only."""

from __future__ import annotations

from typing import Any

from orchestrator_gateway._bodies import WebhookCreate, WebhookUpdate
from orchestrator_gateway._models import model_for
from orchestrator_gateway._routes._deps import Text64, new_router
from orchestrator_gateway._routes._factory import PAGING, Call, Filter, Page, Rpc, render
from orchestrator_gateway._routes._resource import Resource
from stella.orchestrator.v1 import webhooks_pb2

router = new_router()
webhooks = Resource(router, "webhook", service="webhooks")
_CREATE = webhooks.rpc("Create")
_UPDATE = webhooks.rpc("Update")
_ROTATE = Rpc("webhooks", "RotateWebhookSecret")
_REDELIVER = Rpc("webhooks", "RedeliverWebhook")

webhooks.list("The tenant's webhook subscriptions, oldest first (no secrets).")
webhooks.get("One subscription (no secret).")
webhooks.delete("Remove a subscription and its delivery log (scope orch:operate; reason required).")
webhooks.get(
    "A subscription's deliveries, newest event first: state, attempts, last status and latency.",
    Filter("state", Text64, ""),
    *PAGING,
    path=f"{webhooks.item}/deliveries",
    rpc=Rpc("webhooks", "ListWebhookDeliveries"),
    returns=Page("deliveries"),
    name="list_webhook_deliveries",
)


@webhooks.handler(
    "POST", model=_CREATE.model(None), body=WebhookCreate, reason="optional", status_code=201
)
async def create_webhook(call: Call) -> dict[str, Any]:
    """Subscribe a URL to event types (scope orch:operate); the answer's ``secret`` is shown
    this once."""
    return render(await call(_CREATE, operator=call.operator, **call.body.model_dump()), None)


@webhooks.handler(
    "PATCH",
    webhooks.item,
    model=model_for(webhooks_pb2.Webhook.DESCRIPTOR),
    body=WebhookUpdate,
    reason="optional",
)
async def update_webhook(call: Call) -> dict[str, Any]:
    """Change fields of a subscription (scope orch:operate); ``enabled: true`` resumes a
    disabled one and forgets its failure streak."""
    changed = {k: v for k, v in call.body.model_dump().items() if v is not None}
    return render(await call(_UPDATE, operator=call.operator, **changed), "webhook")


@webhooks.handler("POST", f"{webhooks.item}/rotate-secret", model=_ROTATE.model(None))
async def rotate_webhook_secret(call: Call) -> dict[str, Any]:
    """Issue a new secret, shown this once; the previous one keeps signing until
    ``previous_secret_expire_time`` (scope orch:operate; reason required)."""
    return render(await call(_ROTATE, operator=call.operator), None)


@webhooks.handler(
    "POST",
    "/webhook-deliveries/{delivery_id}/redeliver",
    model=_REDELIVER.model("delivery"),
)
async def redeliver_webhook(call: Call) -> dict[str, Any]:
    """Send a delivery again now, as its next attempt (scope orch:operate; reason required)."""
    return render(await call(_REDELIVER, operator=call.operator), "delivery")
