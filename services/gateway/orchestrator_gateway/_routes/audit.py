"""``/audit``: operator actions from the audit chain (AuditService)."""

from __future__ import annotations

from orchestrator_gateway._routes._deps import Text200, new_router
from orchestrator_gateway._routes._factory import Filter
from orchestrator_gateway._routes._resource import Resource

router = new_router()
audit = Resource(router, "audit_entry", plural="audit", service="audit")

audit.list(
    "Operator actions from the audit chain (AuditService); 503 while it is unavailable.",
    Filter("actor", Text200),
    Filter("action", Text200),
    rpc=audit.rpc("List", "audit_entries"),
    items="entries",
)
