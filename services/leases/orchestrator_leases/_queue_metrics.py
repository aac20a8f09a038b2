"""Queue gauges: queue depth and dead-letter entries, from one leader-only snapshot.

Counting the queue on every scrape of every replica would multiply a grouped count over
the unfinished jobs by replicas times scrapes; instead the leader of
:attr:`LeaderLoop.QUEUE_METRICS` runs :meth:`MetricsReader.queue_snapshot` (one statement)
every ``ORCH_QUEUE_METRICS_INTERVAL_S`` and publishes it through
:class:`orchestrator_pg.LeaderSnapshot`, and the other replicas publish nothing, so ``sum``
over replicas is the truth and a stale replica never reports.

The gauges are a custom collector, not ``Gauge`` children: a snapshot replaces the whole
label set, so a tenant whose queue emptied disappears instead of lingering at its last
value. Series: ``orch_queue_depth{tenant,job_type,state}`` and
``orch_dead_letter_entries{tenant,error_class}`` (pending entries), plus
``orch_queue_metrics_updated_timestamp_seconds`` so a stalled snapshot can be alerted on.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orchestrator_pg import LeaderLoop, LeaderSnapshot, MetricsReader, QueueSnapshot


class _SnapshotCollector(Collector):
    """Exports the snapshots of every publishing :class:`QueueGauges` of the process (one
    in a service; tests run several leases services, each on its own database)."""

    def __init__(self) -> None:
        self.sources: weakref.WeakSet[QueueGauges] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "orch_queue_depth",
            "Unfinished jobs by tenant, job type and state (leader's snapshot).",
            labels=("tenant", "job_type", "state"),
        )
        dead = GaugeMetricFamily(
            "orch_dead_letter_entries",
            "Pending dead-letter entries by tenant and error class (leader's snapshot).",
            labels=("tenant", "error_class"),
        )
        updated = GaugeMetricFamily(
            "orch_queue_metrics_updated_timestamp_seconds",
            "Unix time of the last queue snapshot this process published.",
        )
        newest = 0.0
        for source in list(self.sources):
            if source.latest is None:
                continue
            snapshot, at = source.latest
            for (tenant, job_type, state), n in snapshot.queue.items():
                depth.add_metric((tenant, job_type, state), n)
            for (tenant, error_class), n in snapshot.dead_letter.items():
                dead.add_metric((tenant, error_class), n)
            newest = max(newest, at)
        if newest:
            updated.add_metric((), newest)
        yield depth
        yield dead
        yield updated


_COLLECTOR = _SnapshotCollector()
REGISTRY.register(_COLLECTOR)


class QueueGauges(LeaderSnapshot[QueueSnapshot]):
    """Leader-elected loop that publishes the queue snapshot.

    Args:
        conninfo: PostgreSQL URL (the lock needs its own connection).
        reader: the metrics reads.
        interval_s: pause between snapshots.
        lock_key: another advisory lock key (tests that must not contend with a stack).
    """

    def __init__(
        self,
        conninfo: str,
        reader: MetricsReader,
        *,
        interval_s: float,
        lock_key: int | None = None,
    ) -> None:
        super().__init__(
            conninfo,
            LeaderLoop.QUEUE_METRICS,
            reader.queue_snapshot,
            interval_s=interval_s,
            lock_key=lock_key,
        )
        _COLLECTOR.sources.add(self)
