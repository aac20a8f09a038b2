"""REST routes under ``/api/v1/orchestrator``: translate JSON ↔ protobuf and call one RPC.

One module per resource; each has its own router, included here in this order (the order
FastAPI matches in: ``/deadletter/stats`` before ``/deadletter/{entry_id}``). Every route
authenticates the caller and checks the scope it needs (``_deps``; the services check again),
and maps the gRPC answer to JSON with ``_models``. Errors become problem+json in the app's
exception handlers. Most routes are uniform (one RPC, request fields from the path, query or
body, one field of the answer) and are declared by ``_resource.Resource`` and the functions of
``_factory``, which hold the rules they share: paging, filters, the field-mask rule of PATCH,
the operator reason and the headers documented. Routes that do more are written out.
"""

from __future__ import annotations

from fastapi import APIRouter

from orchestrator_gateway._routes import (
    audit,
    backfills,
    deadletters,
    identity,
    insights,
    jobs,
    operations,
    quotas,
    runs,
    schedules,
    sources,
    streams,
    throttles,
    webhooks,
)
from orchestrator_gateway._routes._deps import API_PREFIX

__all__ = ["API_PREFIX", "router"]

router = APIRouter()
for _module in (
    identity,
    sources,
    runs,
    jobs,
    quotas,
    schedules,
    backfills,
    throttles,
    deadletters,
    operations,
    audit,
    insights,
    webhooks,
    streams,
):
    router.include_router(_module.router)
