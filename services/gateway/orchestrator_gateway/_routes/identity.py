"""``/whoami``: the caller as the gateway sees its token."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from orchestrator_gateway._routes._deps import Anyone, new_router

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
