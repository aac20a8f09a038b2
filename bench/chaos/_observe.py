"""What the runner watches while faults happen: leaders per loop from ``pg_locks`` every
100 ms.

``pg_locks`` shows who holds each loop's advisory lock (orchestrator_pg.LeaderLoop): its
granted holders can never exceed one (PostgreSQL's lock is exclusive), so the figure that
says more is how long a loop had *no* holder — the leader gap after a kill or an outage.
While the database is down, samples fail and count as "no leader". Gaps are measured for
the loops whose leader holds the lock between passes (:data:`HELD_LOOPS`); the partition
maintainer and the Idempotency-Key cleanup take it for one hourly pass only.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psycopg

from orchestrator_pg import LeaderLoop

SAMPLE_INTERVAL_S = 0.1
CONNECT_TIMEOUT_S = 2

LOCKS_SQL = """
SELECT (classid::bigint << 32) | objid::bigint AS key, count(*) AS holders
  FROM pg_locks
 WHERE locktype = 'advisory' AND granted AND objsubid = 1
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
 GROUP BY 1
"""
# The loops a full stack runs (migrations take their key only while migrating).
LOOPS = [loop for loop in LeaderLoop if loop is not LeaderLoop.MIGRATIONS]
HELD_LOOPS = [
    loop for loop in LOOPS if loop not in (LeaderLoop.EVENT_PARTITIONS, LeaderLoop.IDEMPOTENCY_KEYS)
]


@dataclass
class Samples:
    """Time series on the monotonic clock."""

    times: list[float] = field(default_factory=list)
    # holders per loop label at each time; None when the sample failed (database away)
    holders: list[dict[str, int] | None] = field(default_factory=list)


class Sampler:
    """A thread that samples ``pg_locks`` every 100 ms.

    Args:
        url: the database (a multi-host URL follows a promotion by itself).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples = Samples()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="chaos-sampler", daemon=True)
        self._by_key = {loop.key: loop.label for loop in LOOPS}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        next_at = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            holders: dict[str, int] | None = None
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(
                        self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                    )
                rows = conn.execute(LOCKS_SQL).fetchall()
                holders = {label: 0 for label in self._by_key.values()}
                for key, count in rows:
                    if key in self._by_key:
                        holders[self._by_key[key]] = int(count)
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.samples.times.append(now)
                self.samples.holders.append(holders)
            next_at += SAMPLE_INTERVAL_S
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            if next_at < time.monotonic() - 1:  # fell behind (a slow connect): skip ahead
                next_at = time.monotonic()
        if conn is not None:
            conn.close()

    def max_holders(self) -> dict[str, int]:
        """Most holders of each loop's lock seen in one sample."""
        with self._lock:
            out = {loop.label: 0 for loop in LOOPS}
            for sample in self.samples.holders:
                for label, count in (sample or {}).items():
                    out[label] = max(out[label], count)
            return out

    def gaps(self) -> dict[str, list[tuple[float, float]]]:
        """Per loop, the intervals (start, end) without a holder, between the first sample
        with one and the last sample; a failed sample counts as none."""
        with self._lock:
            times, holders = list(self.samples.times), list(self.samples.holders)
        out: dict[str, list[tuple[float, float]]] = {}
        for loop in HELD_LOOPS:
            label = loop.label
            spans: list[tuple[float, float]] = []
            last_held: float | None = None
            open_since: float | None = None
            for t, sample in zip(times, holders, strict=True):
                held = bool(sample and sample.get(label))
                if held:
                    if open_since is not None and last_held is not None:
                        spans.append((last_held, t))
                    open_since = None
                    last_held = t
                elif last_held is not None and open_since is None:
                    open_since = t
            if open_since is not None and last_held is not None and times:
                spans.append((last_held, times[-1]))
            out[label] = spans
        return out


def gap_around(spans: list[tuple[float, float]], t: float, within_s: float) -> float:
    """The longest gap that overlaps [t, t + within_s] (0 when the loop never lost its
    leader there)."""
    return max(
        (end - start for start, end in spans if end >= t and start <= t + within_s), default=0.0
    )
