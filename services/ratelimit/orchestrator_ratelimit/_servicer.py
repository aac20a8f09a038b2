"""RateLimitService: protobuf ↔ bucket store / ledger (STYLE rule 12).

The tenant always comes from the caller's token (``current_principal()``); a BucketKey's
tenant must be that tenant or empty (PERMISSION_DENIED otherwise). Scopes are checked by
the server before a method runs (``METHOD_SCOPES``, as the contract's comments say:
Acquire/ReportThrottle ``orch:work``, reads ``orch:read``, bucket configuration and
overrides ``orch:quota``, blackouts ``orch:operate``); control actions need an operator
reason, are audited, and every rate change writes a throttles row whose outbox trigger
emits a ``throttle.changed`` event in the same transaction.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from orchestrator_core import Clock, FieldViolation, InvalidArgument, SystemClock
from orchestrator_grpckit import (
    Principal,
    current_principal,
    enum_label,
    method_scopes,
    optional_datetime,
)
from orchestrator_pg import Row, ThrottleStore, TxContext
from orchestrator_ratelimit import _convert as convert
from orchestrator_ratelimit import _metrics as metrics
from orchestrator_ratelimit import _validate as validate
from orchestrator_ratelimit._limiter import Limiter, Want, from_epoch
from orchestrator_ratelimit._settings import RatelimitSettings
from orchestrator_redis import BucketConfig, BucketKey, BucketState, pause_jitter_s
from stella.orchestrator.v1 import common_pb2, ratelimit_pb2, ratelimit_pb2_grpc

_JITTER_RNG = random.Random()

SERVICE_NAME = "stella.orchestrator.v1.RateLimitService"
_READ = "orch:read"
_WORK = "orch:work"
_QUOTA = "orch:quota"
_OPERATE = "orch:operate"
METHOD_SCOPES: dict[str, str] = method_scopes(
    SERVICE_NAME,
    {
        "Acquire": _WORK,
        "ReportThrottle": _WORK,
        "ConfigureBucket": _QUOTA,
        "GetBucket": _READ,
        "ListBuckets": _READ,
        "SetThrottleOverride": _QUOTA,
        "ClearThrottleOverride": _QUOTA,
        "GetCircuit": _READ,
        "ListCircuits": _READ,
        "SetBlackout": _OPERATE,
        "ListBlackouts": _READ,
        "DeleteBlackout": _OPERATE,
    },
)

_ORIGIN_BY_CLASS = {
    common_pb2.ERROR_CLASS_HTTP_429: "upstream_429",
    common_pb2.ERROR_CLASS_HTTP_5XX: "upstream_503",
}


def _ctx(
    principal: Principal, now: datetime, operator: common_pb2.OperatorContext | None = None
) -> TxContext:
    return TxContext(
        tenant=principal.tenant,
        actor_subject=principal.subject,
        actor_scopes=tuple(sorted(principal.scopes)),
        now=now,
        reason=operator.reason if operator is not None else "",
        ticket=operator.ticket if operator is not None else "",
    )


def _throttle_fields(
    state: BucketState, origin: str, reason: str, source_id: Any = None, **extra: Any
) -> dict[str, Any]:
    return {
        "host": state.key.host,
        "source_id": source_id,
        "origin": origin,
        "refill_per_second": state.refill_per_s,
        "capacity": state.capacity,
        "effective_refill_per_second": state.effective_refill_per_s,
        "paused_until": from_epoch(state.paused_until),
        "reason": reason,
        **extra,
    }


class RateLimitServicer(ratelimit_pb2_grpc.RateLimitServiceServicer):
    """Token buckets, throttles, circuit breakers and blackout windows of a tenant."""

    def __init__(
        self,
        limiter: Limiter,
        repo: ThrottleStore,
        settings: RatelimitSettings,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.limiter = limiter
        self.backend = limiter.backend
        self.store = limiter.backend.store
        self.repo = repo
        self.settings = settings
        self.clock: Clock = clock or SystemClock()

    def _now(self, request: Any = None) -> datetime:
        if request is not None and request.HasField("now"):
            if not self.settings.allow_request_clock:
                raise InvalidArgument(
                    "now is accepted only when ORCH_RATELIMIT_ALLOW_REQUEST_CLOCK is enabled",
                    [FieldViolation("now", "must be unset on this server")],
                )
            value = optional_datetime(request, "now")
            assert value is not None
            return value
        return self.clock.now()

    # ------------------------------------------------------------- tokens

    async def Acquire(self, request: ratelimit_pb2.AcquireRequest, context: Any) -> Any:
        principal = current_principal()
        now = self._now(request)
        out = validate.Violations()
        if not request.items:
            out.add("items", "must hold at least one item")
        if len(request.items) > validate.MAX_ITEMS:
            out.add("items", f"must hold at most {validate.MAX_ITEMS} items")
        wants: list[Want] = []
        for i, item in enumerate(request.items[: validate.MAX_ITEMS]):
            field = f"items[{i}]"
            key = validate.bucket_key(principal, item.key, f"{field}.key", out)
            if not 0 <= item.tokens <= validate.MAX_TOKENS:
                out.add(f"{field}.tokens", f"must be 0..{validate.MAX_TOKENS}")
            source_id = validate.optional_id(item.source_id, f"{field}.source_id", out)
            if key is not None:
                wants.append(Want(key, item.tokens or 1, source_id, partial=item.partial))
        out.raise_if_any("invalid acquire request")
        decisions = await self.limiter.decide(
            wants, now, cached_blackouts=not request.HasField("now")
        )
        grants = []
        for d in decisions:
            grant = ratelimit_pb2.AcquireGrant(
                key=convert.key(d.key),
                granted=d.granted,
                remaining=d.remaining,
                deny_reason=d.deny_reason,
                granted_tokens=d.granted_tokens,
            )
            if not d.granted:
                grant.retry_after.CopyFrom(convert.dur(d.retry_after_s))
                grant.available_at.FromDatetime(now + timedelta(seconds=d.retry_after_s))
            grants.append(grant)
        return ratelimit_pb2.AcquireResponse(grants=grants)

    async def ReportThrottle(
        self, request: ratelimit_pb2.ReportThrottleRequest, context: Any
    ) -> Any:
        principal, now, out, key = self._keyed(request.key)
        origin = _ORIGIN_BY_CLASS.get(request.error_class)
        if origin is None:
            out.add("error_class", "must be ERROR_CLASS_HTTP_429 or ERROR_CLASS_HTTP_5XX")
        retry_after_s = (
            request.retry_after.ToTimedelta().total_seconds()
            if request.HasField("retry_after")
            else 0.0
        )
        if not 0 <= retry_after_s <= validate.MAX_RETRY_AFTER_S:
            out.add("retry_after", f"must be 0..{validate.MAX_RETRY_AFTER_S:.0f} s")
        validate.text(request.reason, "reason", out, validate.MAX_REASON)
        validate.operator(request.operator, out, reason_required=False)
        source_id = validate.optional_id(request.source_id, "source_id", out)
        job_id = validate.optional_id(request.job_id, "job_id", out)
        out.raise_if_any("invalid throttle report")
        # References first: a report naming another tenant's source or job changes nothing.
        await self.repo.check_refs(principal.tenant, {"source_id": source_id, "job_id": job_id})
        assert key is not None
        assert origin is not None
        status = "429" if origin == "upstream_429" else "503"
        reason = request.reason or f"upstream {status} retry-after {retry_after_s:g}s"
        state = await self.backend.checked(
            lambda: self.store.throttle(
                key,
                retry_after_s=retry_after_s,
                now=now.timestamp(),
                reason=reason,
                # reports of one outage must not all resume at the same instant
                jitter_s=pause_jitter_s(retry_after_s, self.settings.jitter_s, _JITTER_RNG),
            )
        )
        row = await self._record_throttle(
            _ctx(principal, now, request.operator), state, origin, reason, source_id, job_id=job_id
        )
        return ratelimit_pb2.ReportThrottleResponse(
            bucket=convert.bucket(state), throttle=convert.throttle(row)
        )

    # ------------------------------------------------------------- configuration

    async def GetBucket(self, request: ratelimit_pb2.GetBucketRequest, context: Any) -> Any:
        state = await self._state(request.key, host_required=False)
        return ratelimit_pb2.GetBucketResponse(bucket=convert.bucket(state))

    async def ConfigureBucket(
        self, request: ratelimit_pb2.ConfigureBucketRequest, context: Any
    ) -> Any:
        principal, now, out, key = self._keyed(request.key, host_required=False)
        if request.capacity <= 0:
            out.add("capacity", "must be positive")
        if not request.refill_per_second > 0:
            out.add("refill_per_second", "must be positive")
        validate.operator(request.operator, out)
        out.raise_if_any("invalid bucket configuration")
        assert key is not None
        config = BucketConfig(float(request.capacity), request.refill_per_second)
        state = await self.backend.checked(
            lambda: self.store.configure(key, config, now=now.timestamp())
        )
        op = request.operator
        await self._operator_throttle(
            principal, now, op, state, f"configured: {op.reason}", "bucket.configure"
        )
        return ratelimit_pb2.ConfigureBucketResponse(bucket=convert.bucket(state))

    def _keyed(
        self, value: ratelimit_pb2.BucketKey, *, host_required: bool = True
    ) -> tuple[Principal, datetime, validate.Violations, BucketKey | None]:
        """How every keyed RPC starts: the caller, the time, and the request's ``key``
        checked against the caller's tenant into a fresh violation list."""
        principal = current_principal()
        now = self._now()
        out = validate.Violations()
        key = validate.bucket_key(principal, value, "key", out, host_required=host_required)
        return principal, now, out, key

    async def _state(self, value: ratelimit_pb2.BucketKey, *, host_required: bool) -> BucketState:
        """The bucket named by a Get request's ``key`` (checked against the caller's tenant)."""
        _, now, out, key = self._keyed(value, host_required=host_required)
        out.raise_if_any("invalid bucket key")
        assert key is not None
        return await self.limiter.state(key, now)

    async def _override(
        self,
        key: BucketKey,
        refill_per_s: float | None,
        until: datetime | None,
        reason: str,
        now: datetime,
    ) -> BucketState:
        """Sets (``until`` given) or clears (``None``) a bucket's operator override."""
        return await self.backend.checked(
            lambda: self.store.override(
                key,
                refill_per_s=refill_per_s,
                until=until.timestamp() if until is not None else None,
                reason=reason,
                now=now.timestamp(),
            )
        )

    async def _record_throttle(
        self,
        ctx: TxContext,
        state: BucketState,
        origin: str,
        reason: str,
        source_id: Any = None,
        *,
        audit_action: str | None = None,
        **extra: Any,
    ) -> Row:
        """Writes the throttles row of a bucket change (with an audit entry when
        ``audit_action`` is given) and counts it by origin."""
        row = await self.repo.insert_throttle(
            ctx,
            _throttle_fields(state, origin, reason, source_id, **extra),
            audit_action=audit_action,
        )
        metrics.THROTTLES.labels(origin).inc()
        return row

    async def _operator_throttle(
        self,
        principal: Principal,
        now: datetime,
        operator: common_pb2.OperatorContext,
        state: BucketState,
        reason: str,
        audit_action: str,
        **extra: Any,
    ) -> Row:
        """An operator's bucket change: its throttles row, audited as ``audit_action``."""
        ctx = _ctx(principal, now, operator)
        return await self._record_throttle(
            ctx, state, "operator", reason, audit_action=audit_action, **extra
        )

    async def _page(
        self, tenant: str, page_size: int, page_token: str, filters: dict[str, object]
    ) -> tuple[list[BucketState], str]:
        out = validate.Violations()
        size = validate.page_size(page_size, out)
        after = validate.decode_token(page_token, filters, out)
        out.raise_if_any("invalid page request")
        now_s = self._now().timestamp()
        states = await self.backend.checked(lambda: self.store.list_states(tenant, now=now_s))
        wanted = filters.get("states")
        rows = sorted(
            (
                s
                for s in states
                if (after is None or s.key.host > after) and (not wanted or s.circuit in wanted)  # type: ignore[operator]
            ),
            key=lambda s: s.key.host,
        )
        token = validate.encode_token(rows[size - 1].key.host, filters) if len(rows) > size else ""
        return rows[:size], token

    async def ListBuckets(self, request: ratelimit_pb2.ListBucketsRequest, context: Any) -> Any:
        principal = current_principal()
        validate.list_tenant(principal, request.tenant)
        rows, token = await self._page(
            principal.tenant, request.page_size, request.page_token, {"kind": "buckets"}
        )
        return ratelimit_pb2.ListBucketsResponse(
            buckets=[convert.bucket(s) for s in rows], next_page_token=token
        )

    async def SetThrottleOverride(
        self, request: ratelimit_pb2.SetThrottleOverrideRequest, context: Any
    ) -> Any:
        principal, now, out, key = self._keyed(request.key)
        if not request.refill_per_second >= 0:
            out.add("refill_per_second", "must be >= 0 (0 pauses the bucket)")
        until = optional_datetime(request, "until")
        if until is None:
            out.add("until", "is required")
        elif until <= now:
            out.add("until", "must be in the future")
        validate.operator(request.operator, out)
        source_id = validate.optional_id(request.source_id, "source_id", out)
        out.raise_if_any("invalid throttle override")
        assert key is not None
        assert until is not None
        reason = request.operator.reason
        state = await self._override(key, request.refill_per_second, until, reason, now)
        row = await self._operator_throttle(
            principal,
            now,
            request.operator,
            state,
            reason,
            "bucket.override.set",
            source_id=source_id,
            expires_at=until,
        )
        return ratelimit_pb2.SetThrottleOverrideResponse(
            throttle=convert.throttle(row), bucket=convert.bucket(state)
        )

    async def ClearThrottleOverride(
        self, request: ratelimit_pb2.ClearThrottleOverrideRequest, context: Any
    ) -> Any:
        principal, now, out, key = self._keyed(request.key)
        validate.operator(request.operator, out)
        out.raise_if_any("invalid override clear")
        assert key is not None
        state = await self._override(key, None, None, request.operator.reason, now)
        op = request.operator
        await self._operator_throttle(
            principal, now, op, state, f"override cleared: {op.reason}", "bucket.override.clear"
        )
        return ratelimit_pb2.ClearThrottleOverrideResponse(bucket=convert.bucket(state))

    # ------------------------------------------------------------- circuits

    async def GetCircuit(self, request: ratelimit_pb2.GetCircuitRequest, context: Any) -> Any:
        state = await self._state(request.key, host_required=True)
        return ratelimit_pb2.GetCircuitResponse(circuit=convert.circuit(state))

    async def ListCircuits(self, request: ratelimit_pb2.ListCircuitsRequest, context: Any) -> Any:
        principal = current_principal()
        validate.list_tenant(principal, request.tenant)
        labels = {enum_label(convert.CIRCUIT_STATE, s) for s in request.states}
        states = sorted(labels - {"unspecified"})
        rows, token = await self._page(
            principal.tenant,
            request.page_size,
            request.page_token,
            {"kind": "circuits", "states": states},
        )
        return ratelimit_pb2.ListCircuitsResponse(
            circuits=[convert.circuit(s) for s in rows], next_page_token=token
        )

    # ------------------------------------------------------------- blackouts

    async def SetBlackout(self, request: ratelimit_pb2.SetBlackoutRequest, context: Any) -> Any:
        principal = current_principal()
        now = self._now()
        out = validate.Violations()
        fields = validate.blackout_fields(request.blackout, out)
        validate.operator(request.operator, out)
        out.raise_if_any("invalid blackout")
        fields["reason"] = request.blackout.reason or request.operator.reason
        fields["ticket"] = request.blackout.ticket or request.operator.ticket
        row = await self.repo.blackout_upsert(_ctx(principal, now, request.operator), fields)
        self.limiter.forget_blackouts(principal.tenant)
        return ratelimit_pb2.SetBlackoutResponse(blackout=convert.blackout(row))

    async def ListBlackouts(self, request: ratelimit_pb2.ListBlackoutsRequest, context: Any) -> Any:
        principal = current_principal()
        out = validate.Violations()
        source_id = validate.optional_id(request.source_id, "source_id", out)
        size = validate.page_size(request.page_size, out)
        filters: dict[str, object] = {"source_id": request.source_id}
        after = validate.decode_token(request.page_token, filters, out)
        after_id = validate.optional_id(after or "", "page_token", out)
        out.raise_if_any("invalid blackout listing")
        rows = await self.repo.blackout_list(principal.tenant, source_id, after_id, size + 1)
        last = str(rows[size - 1]["id"]) if len(rows) > size else ""
        token = validate.encode_token(last, filters) if last else ""
        return ratelimit_pb2.ListBlackoutsResponse(
            blackouts=[convert.blackout(r) for r in rows[:size]], next_page_token=token
        )

    async def DeleteBlackout(
        self, request: ratelimit_pb2.DeleteBlackoutRequest, context: Any
    ) -> Any:
        principal = current_principal()
        out = validate.Violations()
        blackout_id = validate.optional_id(request.blackout_id, "blackout_id", out)
        if not request.blackout_id:
            out.add("blackout_id", "is required")
        validate.operator(request.operator, out)
        out.raise_if_any("invalid blackout deletion")
        assert blackout_id is not None
        await self.repo.blackout_delete(_ctx(principal, self._now(), request.operator), blackout_id)
        self.limiter.forget_blackouts(principal.tenant)
        return ratelimit_pb2.DeleteBlackoutResponse()
