"""``/deadletter``: jobs that failed for good, clustered and replayable (SchedulerService's
operator RPCs)."""

from __future__ import annotations

from typing import Any

import grpc

from orchestrator_gateway._bodies import BulkReplayIn
from orchestrator_gateway._models import ApiModel, model_for
from orchestrator_gateway._problems import ProblemError
from orchestrator_gateway._routes._deps import Text64, Text200, new_router
from orchestrator_gateway._routes._factory import Call, Filter, flag, one_of
from orchestrator_gateway._routes._resource import Resource
from orchestrator_grpckit import enum_labels, enum_number
from stella.orchestrator.v1 import common_pb2, operations_pb2, resources_pb2

router = new_router()
dead_letters = Resource(
    router,
    "dead_letter",
    path="/deadletter",
    id="entry_id",
    field="entry",
    service="operations",
    tags=["deadletter"],
)
_ERROR_CLASS = common_pb2.ErrorClass.DESCRIPTOR
_STATUS = resources_pb2.DeadLetterStatus.DESCRIPTOR
Job = model_for(resources_pb2.Job.DESCRIPTOR)
DeadLetterEntry = model_for(resources_pb2.DeadLetterEntry.DESCRIPTOR)


class BulkReplayResult(ApiModel):
    """What a bulk replay did."""

    matched: int
    replayed: list[str]
    failed: list[dict[str, str]]


class Replayed(ApiModel):
    """The entry after a replay and its job, back in ready."""

    entry: DeadLetterEntry | None  # type: ignore[valid-type]
    job: Job | None  # type: ignore[valid-type]


dead_letters.list(
    "Dead-letter entries, newest first.",
    one_of("status", _STATUS),
    one_of("error_class", _ERROR_CLASS),
    Filter("job_type", Text200),
    Filter("source_id", Text64),
    flag("retryable"),
    items="entries",
)
dead_letters.get(
    "Dead-letter entries clustered by error class, job type and source.",
    one_of("status", _STATUS, default="pending"),
    path=f"{dead_letters.path}/stats",
    rpc=dead_letters.rpc("Get", "dead_letter_stats"),
    returns=None,
    name="dead_letter_stats",
)


@dead_letters.handler(
    "POST", f"{dead_letters.path}/replay", model=BulkReplayResult, body=BulkReplayIn
)
async def replay_dead_letters(call: Call) -> dict[str, Any]:
    """Replay up to ``limit`` pending entries matching the filters (scope orch:operate;
    reason required). Each entry is replayed on its own (not atomically): ``replayed`` lists
    the entry ids that went back to ready, ``failed`` the others with the reason."""
    body: BulkReplayIn = call.body
    if body.error_class is not None and body.error_class not in enum_labels(_ERROR_CLASS):
        raise ProblemError(
            400,
            f"unknown error_class {body.error_class!r}",
            errors=[{"field": "error_class", "description": "an error class label"}],
        )
    req = operations_pb2.ListDeadLettersRequest(
        status=resources_pb2.DEAD_LETTER_STATUS_PENDING,
        error_class=enum_number(_ERROR_CLASS, body.error_class)
        if body.error_class
        else common_pb2.ERROR_CLASS_UNSPECIFIED,
        job_type=body.job_type or "",
        source_id=body.source_id or "",
        page_size=body.limit,
    )
    if body.retryable is not None:
        req.retryable = body.retryable
    listed = await call.send(dead_letters.rpc("List", "dead_letters"), req)
    replay = dead_letters.rpc("Replay")
    replayed: list[str] = []
    failed: list[dict[str, str]] = []
    for entry in listed.entries:
        try:
            await call.send(replay, replay.request(entry_id=entry.id, operator=call.operator))
            replayed.append(entry.id)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED):
                raise
            failed.append({"entry_id": entry.id, "error": exc.details() or exc.code().name})
    return {"matched": len(listed.entries), "replayed": replayed, "failed": failed}


dead_letters.get("One dead-letter entry.")
dead_letters.command(
    "replay",
    "Retry the dead job of a pending entry (scope orch:operate; reason required).",
    returns=Replayed,
)
