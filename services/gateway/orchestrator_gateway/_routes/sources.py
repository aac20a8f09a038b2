"""``/sources``: the upstream systems jobs are fetched from (SchedulerService).

Throttling a source's rate-limit key lives with the other throttles (``throttles``).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import field_mask_pb2

from orchestrator_gateway._bodies import SourceCreate, SourceUpdate
from orchestrator_gateway._models import model_for
from orchestrator_gateway._routes._deps import Text64, new_router
from orchestrator_gateway._routes._factory import Call, Filter, flag, render
from orchestrator_gateway._routes._resource import Resource
from stella.orchestrator.v1 import resources_pb2

router = new_router()
sources = Resource(router, "source")
Source = model_for(resources_pb2.Source.DESCRIPTOR)

sources.list(
    "The tenant's sources in ascending id order.", Filter("source_type", Text64), flag("enabled")
)
sources.create(SourceCreate, "Register a source (scope orch:operate).", reason="optional")
sources.get("One source.")
sources.update(
    SourceUpdate,
    "Change fields of a source (scope orch:operate); ``version`` guards concurrent edits.",
    reason="optional",
)
sources.delete("Remove a source without non-terminal jobs (scope orch:operate; reason required).")


async def _set_paused(call: Call, paused: bool) -> dict[str, Any]:
    # Pausing is a one-field update with a fixed mask, not a body the client sends.
    update = sources.rpc("Update")
    request = update.request(
        source=resources_pb2.Source(id=call.fields["source_id"], paused=paused),
        update_mask=field_mask_pb2.FieldMask(paths=["paused"]),
        operator=call.operator,
    )
    return render(await call.send(update, request), "source")


@sources.handler("POST", f"{sources.item}/pause", model=Source)
async def pause_source(call: Call) -> dict[str, Any]:
    """Stop leasing the source's jobs until resumed (scope orch:operate; reason required)."""
    return await _set_paused(call, True)


@sources.handler("POST", f"{sources.item}/resume", model=Source)
async def resume_source(call: Call) -> dict[str, Any]:
    """Lease the source's jobs again (scope orch:operate; reason required)."""
    return await _set_paused(call, False)
