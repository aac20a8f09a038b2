"""``/quotas``: caps on the tenant's (or one job type's) active, hourly and queued jobs."""

from __future__ import annotations

from orchestrator_gateway._bodies import QuotaCreate, QuotaUpdate
from orchestrator_gateway._routes._deps import QuotaAdmin, Text200, new_router
from orchestrator_gateway._routes._factory import Filter, flag
from orchestrator_gateway._routes._resource import Resource

router = new_router()
quotas = Resource(router, "quota", writer=QuotaAdmin)

quotas.list("The tenant's quotas.", Filter("job_type", Text200), flag("paused"))
quotas.create(QuotaCreate, "Set a quota (scope orch:quota; reason required).")
quotas.get("One quota.")
quotas.update(QuotaUpdate, "Change a quota (scope orch:quota; reason required).")
quotas.delete("Remove a quota (scope orch:quota; reason required).")
