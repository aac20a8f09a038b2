"""The decision core shared by Acquire and Envoy's ShouldRateLimit.

* :class:`Backend` wraps the Redis :class:`BucketStore`: it notices Redis failures, flips
  the gRPC health of the rate-limit services to NOT_SERVING and ``orch_ratelimit_backend_up``
  to 0, and a probe (every ``probe_interval_s``) flips them back once Redis answers.
* :class:`Limiter` evaluates blackouts (PostgreSQL, cached per tenant for
  ``BLACKOUT_CACHE_S``), then takes tokens from every remaining bucket in one Redis round
  trip, and applies the Redis failure policy (``closed``: deny with
  ``backend_unavailable``; ``open``: grant).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from orchestrator_core import FieldViolation, InvalidArgument, Unavailable
from orchestrator_core.blackouts import Weekly, Window, blackout_until
from orchestrator_pg import ThrottleStore
from orchestrator_ratelimit import _metrics as metrics
from orchestrator_ratelimit._settings import FailurePolicy
from orchestrator_redis import (
    BucketKey,
    BucketState,
    BucketStore,
    InvalidBucketArgument,
    RedisUnavailable,
)

T = TypeVar("T")

BACKEND_RETRY_S = 1.0
BLACKOUT_CACHE_S = 1.0
BACKEND_UNAVAILABLE = "backend_unavailable"
BLACKOUT = "blackout"

_log = logging.getLogger("orchestrator_ratelimit")


class Backend:
    """The Redis bucket store plus its health: up/down tracking, gauge, gRPC health."""

    def __init__(
        self,
        store: BucketStore,
        *,
        probe_interval_s: float = 1.0,
        health_names: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.probe_interval_s = probe_interval_s
        self.health_names = tuple(health_names)
        self.health: health_aio.HealthServicer | None = None
        self.up = True
        metrics.BACKEND_UP.set(1)

    async def _set_health(self) -> None:
        if self.health is None:
            return
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self.up
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self.health_names:
            await self.health.set(name, status)

    async def mark(self, up: bool) -> None:
        """Record whether Redis answers; logs and updates health on a change."""
        changed = up != self.up
        self.up = up
        metrics.BACKEND_UP.set(1 if up else 0)
        if changed:
            if up:
                _log.info("rate-limit backend (Redis) is reachable again")
            else:
                _log.error("rate-limit backend (Redis) is unreachable")
        if changed or not up:
            # Re-asserted while down: GrpcService.start() sets every service SERVING once.
            await self._set_health()

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run one store operation; a Redis failure marks the backend down and re-raises."""
        try:
            result = await op()
        except RedisUnavailable:
            await self.mark(False)
            raise
        except InvalidBucketArgument as exc:
            raise InvalidArgument(
                f"invalid bucket argument: {exc}", [FieldViolation(exc.field, str(exc))]
            ) from exc
        if not self.up:
            await self.mark(True)
        return result

    async def checked(self, op: Callable[[], Awaitable[T]]) -> T:
        """Like :meth:`call` but a Redis failure becomes ``Unavailable`` (UNAVAILABLE)."""
        try:
            return await self.call(op)
        except RedisUnavailable as exc:
            raise Unavailable(
                f"rate-limit backend (Redis) is unavailable: {exc}",
                reason="RATELIMIT_BACKEND_UNAVAILABLE",
            ) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self.store.ping())
        except (TimeoutError, RedisUnavailable, OSError, ConnectionError):
            return False

    async def probe_forever(self) -> None:
        """Background task: ping Redis every ``probe_interval_s`` and update health."""
        while True:
            await self.mark(await self.ping())
            await asyncio.sleep(self.probe_interval_s)


@dataclass(frozen=True)
class Want:
    """One request for tokens."""

    key: BucketKey
    tokens: int
    source_id: uuid.UUID | None = None
    # Accept fewer tokens than asked (else all or nothing: a short bucket keeps its tokens).
    partial: bool = False


@dataclass(frozen=True)
class Decision:
    """The answer for one :class:`Want`: ``granted`` when every token asked was taken,
    ``granted_tokens`` how many were (fewer only for a partial want)."""

    key: BucketKey
    granted: bool
    remaining: float
    retry_after_s: float
    deny_reason: str
    granted_tokens: int = 0


class Limiter:
    """Blackouts + token buckets + the Redis failure policy."""

    def __init__(
        self, backend: Backend, repo: ThrottleStore, *, failure_policy: FailurePolicy
    ) -> None:
        self.backend = backend
        self.repo = repo
        self.failure_policy = failure_policy
        self._blackouts: dict[str, tuple[float, list[tuple[uuid.UUID | None, Window]]]] = {}

    def forget_blackouts(self, tenant: str) -> None:
        """Drop the cached blackouts of a tenant (after a change in this process)."""
        self._blackouts.pop(tenant, None)

    async def _windows(
        self, tenant: str, now: datetime, cached: bool
    ) -> list[tuple[uuid.UUID | None, Window]]:
        hit = self._blackouts.get(tenant)
        mono = time.monotonic()
        if cached and hit is not None and mono - hit[0] < BLACKOUT_CACHE_S:
            return hit[1]
        rows = await self.repo.blackout_candidates(tenant, now)
        windows = [
            (
                row["source_id"],
                Window(row["start_at"], row["end_at"], Weekly.from_json(row["recurrence"])),
            )
            for row in rows
        ]
        if cached:
            self._blackouts[tenant] = (mono, windows)
        return windows

    async def decide(
        self, wants: Sequence[Want], now: datetime, *, cached_blackouts: bool = True
    ) -> list[Decision]:
        """Answer every want, in order: blackout check, then one store round trip."""
        decisions: list[Decision | None] = [None] * len(wants)
        by_tenant: dict[str, list[tuple[uuid.UUID | None, Window]]] = {}
        for tenant in {w.key.tenant for w in wants}:
            by_tenant[tenant] = await self._windows(tenant, now, cached_blackouts)
        pending: list[int] = []
        for i, want in enumerate(wants):
            windows = [
                win
                for source, win in by_tenant[want.key.tenant]
                if source is None or source == want.source_id
            ]
            until = blackout_until(windows, now) if windows else None
            if until is not None:
                decisions[i] = Decision(
                    want.key, False, 0.0, (until - now).total_seconds(), BLACKOUT
                )
            else:
                pending.append(i)
        if pending:
            requests = [(wants[i].key, wants[i].tokens) for i in pending]
            whole = [not wants[i].partial for i in pending]
            now_s = now.timestamp()
            try:
                grants = await self.backend.call(
                    lambda: self.backend.store.acquire(requests, now=now_s, whole=whole)
                )
            except RedisUnavailable:
                open_ = self.failure_policy == "open"
                for i in pending:
                    decisions[i] = Decision(
                        wants[i].key,
                        open_,
                        0.0,
                        0.0 if open_ else BACKEND_RETRY_S,
                        "" if open_ else BACKEND_UNAVAILABLE,
                        wants[i].tokens if open_ else 0,
                    )
            else:
                for i, grant in zip(pending, grants, strict=True):
                    ok = grant.granted >= grant.requested
                    decisions[i] = Decision(
                        wants[i].key,
                        ok,
                        float(grant.remaining),
                        0.0 if ok else max(float(grant.retry_after_s), 0.0),
                        "" if ok else (grant.deny_reason or "tokens"),
                        grant.granted,
                    )
        result = [d for d in decisions if d is not None]
        for decision in result:
            metrics.DECISIONS.labels("granted" if decision.granted else decision.deny_reason).inc()
        return result

    async def state(self, key: BucketKey, now: datetime) -> BucketState:
        return await self.backend.checked(
            lambda: self.backend.store.state(key, now=now.timestamp())
        )


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)
