"""Queue gauges: queue depth and dead-letter entries, from one leader-only snapshot.

Counting the queue on every scrape of every replica would multiply a grouped count over
the unfinished jobs by replicas times scrapes; instead the leader of
:attr:`LeaderLoop.QUEUE_METRICS` runs :meth:`MetricsReader.queue_snapshot` (one statement)
every ``ORCH_QUEUE_METRICS_INTERVAL_S`` and publishes it, and the other replicas publish
nothing, so ``sum`` over replicas is the truth and a stale replica never reports. A
replica that loses leadership (or whose snapshot fails) withdraws its series at once.

The gauges are a custom collector, not ``Gauge`` children: a snapshot replaces the whole
label set, so a tenant whose queue emptied disappears instead of lingering at its last
value. Series: ``orch_queue_depth{tenant,job_type,state}`` and
``orch_dead_letter_entries{tenant,error_class}`` (pending entries), plus
``orch_queue_metrics_updated_timestamp_seconds`` so a stalled snapshot can be alerted on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orchestrator_pg import LeaderLoop, Leadership, MetricsReader, QueueSnapshot

_log = logging.getLogger("orchestrator_leases.queue_metrics")


class _SnapshotCollector(Collector):
    """Exports the snapshots of every publishing :class:`QueueGauges` of the process (one
    in a service; tests run several leases services, each on its own database)."""

    def __init__(self) -> None:
        self.published: dict[int, tuple[QueueSnapshot, float]] = {}

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
        for snapshot, at in list(self.published.values()):
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


class QueueGauges:
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
        self._reader = reader
        self._interval_s = interval_s
        self._leadership = Leadership(conninfo, LeaderLoop.QUEUE_METRICS, key=lock_key)
        self._rng = random.Random()  # its own: the global one belongs to the application
        self.snapshots = 0

    @property
    def is_leader(self) -> bool:
        """Whether this replica led at its last check."""
        return self._leadership.is_leader

    async def run(self) -> None:
        """Contends for leadership and publishes snapshots until cancelled."""
        try:
            async with self._leadership:
                while True:
                    if await self._leadership.ensure():
                        await self.publish()
                    else:
                        self._withdraw()
                    # jittered, so standing-by replicas do not retry in step
                    await asyncio.sleep(self._interval_s * self._rng.uniform(0.8, 1.0))
        finally:
            self._withdraw()

    async def publish(self) -> None:
        """One snapshot, published; a failure withdraws the series (never stale values)."""
        try:
            snapshot = await self._reader.queue_snapshot()
        except Exception:  # a metric must never end the service: the next pass tries again
            _log.exception("queue snapshot failed")
            self._withdraw()
            return
        _COLLECTOR.published[id(self)] = (snapshot, time.time())
        self.snapshots += 1

    def _withdraw(self) -> None:
        _COLLECTOR.published.pop(id(self), None)
