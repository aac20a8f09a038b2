"""AuditService: translates protobuf ↔ audit calls (STYLE rule 12).

The tenant of every call is the caller's (``current_principal()``); run and source ids of
another tenant are simply not found (and row-level security would hide them anyway).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from google.protobuf import timestamp_pb2

from orchestrator_audit._bundle import MEDIA_TYPE, build_bundle
from orchestrator_audit._canonical import GENESIS_HASH
from orchestrator_audit._keys import ALGORITHM, Signer
from orchestrator_audit._verify import verify_archive
from orchestrator_core import FieldViolation, InvalidArgument, NotFound, Unavailable, paging
from orchestrator_grpckit import current_principal, method_scopes
from orchestrator_pg import AuditLedger, ExportScope, Row
from stella.orchestrator.v1 import audit_pb2, audit_pb2_grpc, common_pb2

SERVICE_NAME = "stella.orchestrator.v1.AuditService"
_READ = "orch:read"
METHOD_SCOPES: dict[str, str] = method_scopes(
    SERVICE_NAME,
    dict.fromkeys(
        (
            "ExportBundle",
            "GetPublicKey",
            "VerifyBundle",
            "ListAuditEntries",
            "GetChainHead",
        ),
        _READ,
    ),
)
CHUNK_BYTES = 1 << 20
EXPORT_CHAIN_WAIT_S = 10.0
EXPORT_CHAIN_POLL_S = 0.02
MAX_FILTER_CHARS = 256


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value.astimezone(UTC))
    return out


def _parse_ts(value: str | None) -> timestamp_pb2.Timestamp | None:
    return _ts(datetime.fromisoformat(value)) if value else None


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(
            f"{field} must be a UUID, got {value[:80]!r}",
            [FieldViolation(field, "must be a UUID")],
        ) from None


def _window(window: common_pb2.TimeWindow, field: str) -> tuple[datetime | None, datetime | None]:
    start = window.start.ToDatetime(UTC) if window.HasField("start") else None
    end = window.end.ToDatetime(UTC) if window.HasField("end") else None
    if start is not None and end is not None and end <= start:
        raise InvalidArgument(
            f"{field}.end must be after {field}.start",
            [FieldViolation(f"{field}.end", "must be after start")],
        )
    return start, end


def scope_of(request: audit_pb2.ExportBundleRequest) -> ExportScope:
    """The export scope of a request.

    Raises:
        InvalidArgument: No scope, a malformed id, or a window without both bounds.
    """
    which = request.WhichOneof("scope")
    if which == "run_id":
        return ExportScope(run_id=_uuid(request.run_id, "run_id"))
    if which == "source_id":
        return ExportScope(source_id=_uuid(request.source_id, "source_id"))
    if which == "time_range":
        start, end = _window(request.time_range, "time_range")
        if start is None or end is None:
            raise InvalidArgument(
                "time_range needs both start and end",
                [FieldViolation("time_range", "set start and end")],
            )
        return ExportScope(start=start, end=end)
    raise InvalidArgument(
        "the bundle scope is missing: set one of time_range, run_id or source_id",
        [FieldViolation("scope", "set exactly one of time_range, run_id, source_id")],
    )


def manifest_message(
    manifest: Mapping[str, Any] | None, *, sha256: str = "", size: int = 0
) -> audit_pb2.BundleManifest:
    """The proto summary of a bundle manifest."""
    out = audit_pb2.BundleManifest(sha256=sha256, size_bytes=size, media_type=MEDIA_TYPE)
    if not manifest:
        return out
    out.key_id = str(manifest.get("key_id", ""))
    for name, count in (manifest.get("counts") or {}).items():
        if isinstance(count, int):
            out.counts[str(name)] = count
    for entry in manifest.get("files") or []:
        if isinstance(entry, dict):
            out.files.append(
                audit_pb2.BundleFile(
                    path=str(entry.get("path", "")),
                    sha256=str(entry.get("sha256", "")),
                    size_bytes=int(entry.get("size_bytes") or 0),
                    count=int(entry.get("count") or 0),
                )
            )
    chain = manifest.get("chain") or {}
    head, anchor = chain.get("head"), chain.get("anchor")
    if isinstance(head, dict):
        out.chain_head.CopyFrom(
            audit_pb2.ChainHead(
                tenant=str(manifest.get("tenant", "")),
                seq=int(head.get("seq") or 0),
                hash=str(head.get("hash", "")),
            )
        )
        if isinstance(anchor, dict) and anchor.get("seq") == head.get("seq"):
            stamp = _parse_ts(anchor.get("anchored_at"))
            if stamp is not None:
                out.chain_head.anchored_at.CopyFrom(stamp)
    return out


def _text_filter(value: str, field: str) -> str | None:
    if len(value) > MAX_FILTER_CHARS:
        raise InvalidArgument(
            f"{field} is longer than {MAX_FILTER_CHARS} characters",
            [FieldViolation(field, f"at most {MAX_FILTER_CHARS} characters")],
        )
    return value or None


def entry_message(row: Row) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(
        seq=int(row["seq"] or 0),
        tenant=row["tenant"],
        actor=common_pb2.Actor(
            subject=row["actor_subject"], scopes=list(row["actor_scopes"] or [])
        ),
        action=row["action"],
        target=row["target"],
        reason=row["reason"],
        ticket=row["ticket"],
        occurred_at=_ts(row["occurred_at"]),
        event_id=str(row["event_id"]) if row["event_id"] else "",
        hash=row["hash"] or "",
        prev_hash=row["prev_hash"] or "",
    )


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Bundles, keys, verification, audit entries and chain heads."""

    def __init__(self, ledger: AuditLedger, signer: Signer) -> None:
        self.ledger = ledger
        self.signer = signer

    async def _wait_for_chain(self) -> None:
        """Waits (bounded) until the chain covers what was committed when the request came.

        Raises:
            Unavailable: The chainer is behind (or not running): a bundle never silently
                leaves out committed events.
        """
        target = await self.ledger.seq_allocated()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + EXPORT_CHAIN_WAIT_S
        cursor = await self.ledger.cursor()
        while cursor < target and loop.time() < deadline:
            await asyncio.sleep(EXPORT_CHAIN_POLL_S)
            cursor = await self.ledger.cursor()
        if cursor < target:
            raise Unavailable(
                f"the audit chain has reached seq {cursor} of {target} committed; retry the "
                "export shortly (bundles only hold chained events, and leave none out)",
                reason="CHAIN_BEHIND",
                metadata={"chained_seq": str(cursor), "committed_seq": str(target)},
            )

    async def ExportBundle(
        self, request: audit_pb2.ExportBundleRequest, context: Any
    ) -> AsyncIterator[audit_pb2.ExportBundleResponse]:
        tenant = current_principal().tenant
        scope = scope_of(request)
        await self._wait_for_chain()
        data = await self.ledger.export_data(tenant, scope)
        bundle = build_bundle(tenant, scope, data, self.signer)
        archive = bundle.archive
        summary = manifest_message(bundle.manifest, sha256=bundle.sha256, size=len(archive))
        for offset in range(0, len(archive), CHUNK_BYTES):
            chunk = archive[offset : offset + CHUNK_BYTES]
            last = offset + CHUNK_BYTES >= len(archive)
            yield audit_pb2.ExportBundleResponse(chunk=chunk, summary=summary if last else None)

    async def GetPublicKey(self, request: audit_pb2.GetPublicKeyRequest, context: Any) -> Any:
        if request.key_id and request.key_id != self.signer.key_id:
            raise NotFound("key", request.key_id)
        return audit_pb2.GetPublicKeyResponse(
            key_id=self.signer.key_id,
            algorithm=ALGORITHM,
            public_key_pem=self.signer.public_key_pem,
        )

    async def VerifyBundle(self, request: audit_pb2.VerifyBundleRequest, context: Any) -> Any:
        tenant = current_principal().tenant
        verdict = await asyncio.to_thread(verify_archive, request.bundle, [self.signer.public_key])
        problems = list(verdict.problems)
        if verdict.manifest is not None and verdict.manifest.get("tenant") != tenant:
            problems.append(f"manifest.json: the bundle is of another tenant, not {tenant!r}")
            verdict.manifest = None
        return audit_pb2.VerifyBundleResponse(
            ok=not problems,
            problems=problems,
            manifest=manifest_message(
                verdict.manifest,
                sha256=hashlib.sha256(request.bundle).hexdigest(),
                size=len(request.bundle),
            ),
        )

    async def ListAuditEntries(
        self, request: audit_pb2.ListAuditEntriesRequest, context: Any
    ) -> Any:
        tenant = current_principal().tenant
        actor = _text_filter(request.actor, "actor")
        action = _text_filter(request.action, "action")
        start, end = (
            _window(request.time_range, "time_range")
            if request.HasField("time_range")
            else (None, None)
        )
        filters = {"actor": actor, "action": action, "start": start, "end": end}
        rows, token = await paging.page(
            request,
            filters,
            partial(
                self.ledger.entry_list, tenant, actor=actor, action=action, start=start, end=end
            ),
            paging.BY_SEQ,
        )
        return audit_pb2.ListAuditEntriesResponse(
            entries=[entry_message(row) for row in rows], next_page_token=token
        )

    async def GetChainHead(self, request: audit_pb2.GetChainHeadRequest, context: Any) -> Any:
        tenant = current_principal().tenant
        row = await self.ledger.chain_head(tenant)
        if row is None:
            return audit_pb2.GetChainHeadResponse(
                head=audit_pb2.ChainHead(tenant=tenant, seq=0, hash=GENESIS_HASH)
            )
        return audit_pb2.GetChainHeadResponse(
            head=audit_pb2.ChainHead(
                tenant=tenant,
                seq=int(row["seq"]),
                hash=row["hash"],
                anchored_at=_ts(row["anchored_at"]),
            )
        )
