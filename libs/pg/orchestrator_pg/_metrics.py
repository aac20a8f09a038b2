"""Reads behind the domain metrics (queries/metrics.sql); docs/metrics.md lists the metrics.

The queue snapshot spans every tenant by design (an operator's view, like the lease
watchdog): it runs on the leader of :attr:`LeaderLoop.QUEUE_METRICS` only, once per
interval, so neither scrapes nor replicas multiply its cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestrator_pg._db import Database
from orchestrator_pg._queries import query

# Series per family the snapshot returns at most (largest first): the cardinality bound.
MAX_SERIES = 1000


@dataclass(frozen=True)
class QueueSnapshot:
    """Unfinished jobs by (tenant, job_type, state) and pending dead-letter entries by
    (tenant, error_class)."""

    queue: dict[tuple[str, str, str], int]
    dead_letter: dict[tuple[str, str], int]


@dataclass(frozen=True)
class ChainLag:
    """How far the audit chain trails: seqs allocated past the cursor, and the oldest
    committed event after it (None: none)."""

    events: int
    oldest_unchained_at: datetime | None


class MetricsReader:
    """Storage reads of the metrics (named noun-first, STYLE rule 4)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def queue_snapshot(self, *, max_series: int = MAX_SERIES) -> QueueSnapshot:
        """One round trip: queue depth and dead-letter entries of every tenant."""
        async with self.db.connection() as conn:
            cur = await conn.execute(query("metrics_queue_snapshot"), {"max_series": max_series})
            rows = await cur.fetchall()
        queue: dict[tuple[str, str, str], int] = {}
        dead: dict[tuple[str, str], int] = {}
        for row in rows:
            if row["kind"] == "queue":
                queue[(row["tenant"], row["job_type"], row["label"])] = int(row["n"])
            else:
                dead[(row["tenant"], row["label"])] = int(row["n"])
        return QueueSnapshot(queue, dead)

    async def audit_chain_lag(self, cursor: int) -> ChainLag:
        """The chain's lag behind the outbox, given the chainer's cursor."""
        async with self.db.connection() as conn:
            cur = await conn.execute(query("metrics_audit_chain_lag"), {"cursor": cursor})
            row = await cur.fetchone()
        if row is None:
            return ChainLag(0, None)
        return ChainLag(max(0, int(row["allocated"]) - cursor), row["oldest_unchained_at"])
