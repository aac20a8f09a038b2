"""``/audit``: operator actions from the audit chain, and signed audit bundles to download
(AuditService)."""

from __future__ import annotations

from datetime import datetime

from fastapi import Response

from orchestrator_gateway._problems import ProblemError
from orchestrator_gateway._routes._deps import Grpc, Reader, Text64, Text200, new_router
from orchestrator_gateway._routes._factory import Filter
from orchestrator_gateway._routes._resource import Resource
from stella.orchestrator.v1 import audit_pb2

router = new_router()
audit = Resource(router, "audit_entry", plural="audit", service="audit")
BUNDLE_MEDIA_TYPE = "application/x-tar"

audit.list(
    "Operator actions from the audit chain (AuditService); 503 while it is unavailable.",
    Filter("actor", Text200),
    Filter("action", Text200),
    rpc=audit.rpc("List", "audit_entries"),
    items="entries",
)


@router.get(
    "/audit/bundle",
    tags=audit.tags,
    response_class=Response,
    responses={200: {"content": {BUNDLE_MEDIA_TYPE: {}}, "description": "The bundle (tar)"}},
)
async def export_audit_bundle(
    who: Reader,
    grpc_: Grpc,
    start: datetime | None = None,
    end: datetime | None = None,
    run_id: Text64 = "",
    source_id: Text64 = "",
) -> Response:
    """A signed audit bundle (tar: events, audit entries, chain links, manifest and its
    signature; docs/audit.md) of one scope: a time range (``start`` and ``end``), a run or a
    source. ``X-Bundle-Sha256`` is the archive's digest; verify it offline with
    ``stella orchestrator audit verify``."""
    request = audit_pb2.ExportBundleRequest()
    if start is not None or end is not None:
        if start is None or end is None:
            raise ProblemError(400, "a time range needs both start and end")
        request.time_range.start.FromDatetime(start)
        request.time_range.end.FromDatetime(end)
    if run_id:
        request.run_id = run_id
    if source_id:
        request.source_id = source_id
    chunks: list[bytes] = []
    summary = None
    # The audit service builds the whole archive before its first chunk, so an error (a bad
    # scope, the service down) arrives before any byte and becomes a problem document.
    call = grpc_.audit.ExportBundle(request, metadata=who.metadata, timeout=grpc_.timeout_s)
    async for message in call:
        chunks.append(message.chunk)
        if message.HasField("summary"):
            summary = message.summary
    archive = b"".join(chunks)
    which = request.WhichOneof("scope") or "bundle"
    headers = {
        "Content-Disposition": f'attachment; filename="audit-{who.principal.tenant}-{which}.tar"'
    }
    if summary is not None:
        headers["X-Bundle-Sha256"] = summary.sha256
    return Response(archive, media_type=BUNDLE_MEDIA_TYPE, headers=headers)
