"""``/whoami``: the caller as the gateway sees its token; ``/tenants``: the fair-share weights
of the tenants it grants."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from orchestrator_gateway._routes._deps import Anyone, Reader, Stores, new_router

router = new_router()


class WhoAmI(BaseModel):
    """The caller as the gateway sees the token."""

    subject: str
    tenant: str
    tenants: list[str]
    scopes: list[str]


@router.get("/whoami", response_model=WhoAmI, tags=["identity"])
async def whoami(who: Anyone) -> dict[str, Any]:
    """The caller's subject, tenant and scopes (what the Console shows and enables)."""
    p = who.principal
    return {
        "subject": p.subject,
        "tenant": p.tenant,
        "tenants": list(p.tenants),
        "scopes": sorted(p.scopes),
    }


class TenantWeight(BaseModel):
    """A tenant the caller's token grants and its fair-share weight: its share of the worker
    slots against the other tenants with ready jobs is weight / (sum of their weights)."""

    id: str
    display_name: str
    weight: int


class TenantWeights(BaseModel):
    """The tenants the caller's token grants (by id) that are registered."""

    items: list[TenantWeight]


@router.get("/tenants", response_model=TenantWeights, tags=["identity"])
async def list_tenants(who: Reader, stores: Stores) -> dict[str, Any]:
    """The fair-share weight of each tenant the caller's token names (a ``*`` grant shows the
    caller's current tenant only; operators set weights with ``stella orchestrator tenants
    weight``)."""
    p = who.principal
    ids = sorted({t for t in p.tenants if t != "*"} | {p.tenant})
    rows = await stores.tenants.tenant_list_by_ids(ids)
    items = [
        {"id": r["id"], "display_name": r["display_name"], "weight": r["weight"]} for r in rows
    ]
    return {"items": items}
