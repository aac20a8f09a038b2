"""Bucket gauges: circuit state and rates per ``{tenant, host}``, from a leader-only snapshot.

The buckets live in Redis and every replica sees the same ones, so one replica (the leader
of :attr:`LeaderLoop.BUCKET_METRICS`) reads them every ``ORCH_RATELIMIT_BUCKET_METRICS_INTERVAL_S``
through :class:`orchestrator_pg.LeaderSnapshot`: the tenants from PostgreSQL, then each
tenant's live buckets in one Redis pipeline (``BucketStore.list_states``). The others
export nothing, so a scrape costs no Redis call and ``sum``/``max`` over replicas is exact.

Cardinality: one series per family per live bucket (a bucket idle for a day expires in
Redis), at most :data:`MAX_BUCKETS` buckets. Beyond that the buckets worth seeing are kept
(open or half-open circuits, then paused ones, then by tenant and host) and the rest left
out, never summed into a catch-all. docs/metrics.md lists the series.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orchestrator_core import Clock, SystemClock
from orchestrator_pg import LeaderLoop, LeaderSnapshot, TenantStore
from orchestrator_redis import BucketState, BucketStore

# Buckets the snapshot exports at most (4 series each): the cardinality bound.
MAX_BUCKETS = 1000
# Circuit states as gauge values, in order of alarm (docs/metrics.md).
CIRCUIT_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


@dataclass(frozen=True)
class BucketSnapshot:
    """The exported buckets and how many live buckets were left out by the cap."""

    buckets: tuple[BucketState, ...]
    omitted: int


def _alarm_first(state: BucketState, now_s: float) -> tuple[bool, bool, str, str]:
    paused = state.paused_until is not None and state.paused_until > now_s
    return (state.circuit == "closed", not paused, state.key.tenant, state.key.host)


class _BucketCollector(Collector):
    """Exports the snapshots of every publishing :class:`BucketGauges` of the process."""

    def __init__(self) -> None:
        self.sources: weakref.WeakSet[BucketGauges] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ("tenant", "host")
        circuit = GaugeMetricFamily(
            "orch_ratelimit_circuit_state",
            "Circuit breaker per bucket: 0 closed, 1 half-open, 2 open (leader's snapshot).",
            labels=labels,
        )
        rate = GaugeMetricFamily(
            "orch_ratelimit_bucket_rate_per_second",
            "Refill rate in force per bucket (learnt or overridden), tokens per second; "
            "1e9 means unlimited (leader's snapshot).",
            labels=labels,
        )
        configured = GaugeMetricFamily(
            "orch_ratelimit_bucket_configured_rate_per_second",
            "Configured refill rate per bucket, tokens per second; 1e9 means none "
            "(leader's snapshot).",
            labels=labels,
        )
        paused = GaugeMetricFamily(
            "orch_ratelimit_bucket_paused",
            "1 while the bucket is paused by an upstream Retry-After or a zero-rate override.",
            labels=labels,
        )
        omitted = GaugeMetricFamily(
            "orch_ratelimit_bucket_metrics_omitted",
            "Live buckets left out of the snapshot by its series cap.",
        )
        updated = GaugeMetricFamily(
            "orch_ratelimit_bucket_metrics_updated_timestamp_seconds",
            "Unix time of the last bucket snapshot this process published.",
        )
        for source in list(self.sources):
            if source.latest is None:
                continue
            snapshot, at = source.latest
            for state in snapshot.buckets:
                key = (state.key.tenant, state.key.host)
                circuit.add_metric(key, CIRCUIT_VALUES.get(state.circuit, 2.0))
                rate.add_metric(key, _finite(state.effective_refill_per_s))
                configured.add_metric(key, _finite(state.refill_per_s))
                is_paused = state.paused_until is not None and state.paused_until > at
                paused.add_metric(key, 1.0 if is_paused else 0.0)
            omitted.add_metric((), snapshot.omitted)
            updated.add_metric((), at)
        yield from (circuit, rate, configured, paused, omitted, updated)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 1e9


_COLLECTOR = _BucketCollector()
REGISTRY.register(_COLLECTOR)


class BucketGauges(LeaderSnapshot[BucketSnapshot]):
    """Leader-elected loop that publishes every tenant's live buckets.

    Args:
        conninfo: PostgreSQL URL (the lock needs its own connection).
        tenants: the tenant registry (which tenants to read buckets of).
        store: the Redis bucket store.
        interval_s: pause between snapshots.
        clock: the bucket clock (buckets refill up to ``now``).
        max_buckets: the cap on exported buckets.
        lock_key: another advisory lock key (tests that must not contend with a stack).
    """

    def __init__(
        self,
        conninfo: str,
        tenants: TenantStore,
        store: BucketStore,
        *,
        interval_s: float,
        clock: Clock | None = None,
        max_buckets: int = MAX_BUCKETS,
        lock_key: int | None = None,
    ) -> None:
        super().__init__(
            conninfo, LeaderLoop.BUCKET_METRICS, self.read, interval_s=interval_s, lock_key=lock_key
        )
        self._tenants = tenants
        self._store = store
        self._clock: Clock = clock or SystemClock()
        self._max_buckets = max_buckets
        _COLLECTOR.sources.add(self)

    async def read(self) -> BucketSnapshot:
        """Every tenant's live buckets, the most alarming first, capped."""
        now_s = self._clock.now().timestamp()
        states: list[BucketState] = []
        for row in await self._tenants.tenant_list():
            states += await self._store.list_states(row["id"], now=now_s)
        states.sort(key=lambda s: _alarm_first(s, now_s))
        kept = states[: self._max_buckets]
        return BucketSnapshot(tuple(kept), len(states) - len(kept))
