"""The audit service as operators run it (``python -m orchestrator_audit``), killed with
SIGKILL in the middle of a stream of 10,000 events and started again: every committed event
is chained exactly once, each tenant's chain verifies link by link, and nothing that was
rolled back or committed out of seq order is missed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg.rows import dict_row

from bench.ports import free_port
from orchestrator_audit import GENESIS_HASH, chain_hash, event_document
from tests.conftest import migrated_database

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
SECRET = "acceptance-secret-0123456789abcdef"
TENANTS = ("acme", "globex", "initech")
TOTAL_EVENTS = 10_000
BATCH = 50
# Generous bounds for a loaded 2-core machine: they only catch hangs, never set the pace.
PROGRESS_MAX_S = 300.0
WRITERS_MAX_S = 300.0
WRITER_PAUSE_MAX_S = 600.0
START_MAX_S = 120.0

INSERT_SOURCES = """
INSERT INTO orchestrator.sources (id, tenant, name, source_type, host, created_at, updated_at)
SELECT gen_random_uuid(), %(tenant)s, 's-' || gen_random_uuid(), 'nvd', 'h.example', now(), now()
  FROM generate_series(1, %(n)s)
"""


@pytest.fixture(scope="module")
def audit_restart_db(admin_url) -> Iterator[str]:
    with migrated_database(admin_url, "orch_audit_kill", tenants=TENANTS) as url:
        yield url


def _start(url: str) -> subprocess.Popen:
    port = free_port()
    env = {
        **os.environ,
        "ORCH_DATABASE_URL": url,
        "ORCH_AUDIT_GRPC_PORT": str(port),
        "ORCH_AUDIT_METRICS_PORT": "0",
        "ORCH_AUTH_HS256_SECRET": SECRET,
        "ORCH_SHUTDOWN_GRACE_S": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator_audit"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + START_MAX_S
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                if (
                    health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return proc
            except grpc.RpcError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"audit did not become SERVING:\n{proc.communicate(timeout=5)[1]}")
            time.sleep(0.1)


def _cursor(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT seq FROM orchestrator.audit_cursor").fetchone()
    return int(row["seq"]) if row else 0


class _Writers:
    """Three writers (one per tenant) commit batches of source inserts; a fourth rolls back
    every batch (seq gaps) and a fifth holds its seqs in a long transaction before
    committing (out-of-order commits). The batch writers stop at ``pause_at`` committed
    events until :attr:`resume` is set, so events are always written both before and after
    the kill, however fast or slow the machine. ``committed`` counts only what committed; an
    exception in any writer is kept and re-raised by :meth:`check` and :meth:`join`, never
    lost with its thread.

    The batch writers share a budget of ``stop_at`` events of their own; the slow writer's
    100 come on top, so the total is ``stop_at + 100`` whatever the interleaving. (It used to
    be one counter for all: when the slow writer had counted 60 or more of its events before
    the batch writers reached the stop, as on a loaded machine where the batches go slower
    and the slow writer's sleeps do not, the batch writers stopped one or two batches early:
    9,950 or 9,900 events instead of 10,000.)
    """

    def __init__(self, url: str, stop_at: int, pause_at: int) -> None:
        self.url = url
        self.stop_at = stop_at
        self.pause_at = pause_at
        self.resume = threading.Event()
        self.committed = 0
        self._reserved = 0
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        targets = [(self._commit_batches, (t,)) for t in TENANTS]
        targets += [(self._roll_back, ()), (self._slow_commit, ())]
        self._threads = [
            threading.Thread(target=self._guard, args=(fn, args), daemon=True)
            for fn, args in targets
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def check(self) -> None:
        """Re-raises the first writer's exception, if any (call it while waiting)."""
        if self._errors:
            raise self._errors[0]

    def join(self, timeout_s: float) -> None:
        """Waits for every writer; fails the test on a writer's exception or a hang."""
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.check()
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"writers still running after {timeout_s:.0f} s: {alive}"

    def stop(self, timeout_s: float) -> None:
        """On the way out of a failed test: lets paused writers go and waits a bounded time
        for them, so none still writes while the database is dropped."""
        self.resume.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _guard(self, fn, args) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # kept for join(): threading would only print it
            self._errors.append(exc)
            self.resume.set()  # no writer waits on a run that already failed

    def _reserve(self, n: int) -> bool:
        with self._lock:
            if self._reserved >= self.stop_at:
                return False
            self._reserved += n
            return True

    def _done(self, n: int) -> None:
        with self._lock:
            self.committed += n

    def _commit_batches(self, tenant: str) -> None:
        with psycopg.connect(self.url, autocommit=False) as conn:
            while self._reserve(BATCH):
                if self.committed >= self.pause_at and not self.resume.is_set():
                    assert self.resume.wait(WRITER_PAUSE_MAX_S), "never resumed"
                conn.execute(INSERT_SOURCES, {"tenant": tenant, "n": BATCH})
                conn.commit()
                self._done(BATCH)
                time.sleep(0.01)

    def _roll_back(self) -> None:
        with psycopg.connect(self.url, autocommit=False) as conn:
            for _ in range(40):
                conn.execute(INSERT_SOURCES, {"tenant": "acme", "n": 10})
                conn.rollback()
                time.sleep(0.05)

    def _slow_commit(self) -> None:
        with psycopg.connect(self.url, autocommit=False) as conn:
            for _ in range(5):
                conn.execute(INSERT_SOURCES, {"tenant": "globex", "n": 20})
                time.sleep(0.7)  # its seqs stay uncommitted while others commit later ones
                conn.commit()
                self._done(20)


def _verify_chains(conn: psycopg.Connection) -> dict[str, int]:
    """Walks every tenant's chain in seq order against the events; returns links per tenant."""
    lengths: dict[str, int] = {}
    for tenant in TENANTS:
        rows = conn.execute(
            "SELECT e.*, c.prev_hash AS chain_prev_hash, c.hash AS chain_hash"
            " FROM orchestrator.events e"
            " LEFT JOIN orchestrator.audit_chain c ON c.tenant = e.tenant AND c.seq = e.seq"
            " WHERE e.tenant = %s ORDER BY e.seq",
            (tenant,),
        ).fetchall()
        prev = GENESIS_HASH
        for row in rows:
            assert row["chain_hash"] is not None, f"event {row['seq']} of {tenant} not chained"
            assert row["chain_prev_hash"] == prev, f"chain broken at seq {row['seq']}"
            assert chain_hash(prev, event_document(row)) == row["chain_hash"], row["seq"]
            prev = row["chain_hash"]
        lengths[tenant] = len(rows)
    return lengths


def test_kill_mid_stream_and_restart_chains_every_event_exactly_once(audit_restart_db):
    url = audit_restart_db
    writers = _Writers(url, stop_at=TOTAL_EVENTS - 100, pause_at=TOTAL_EVENTS // 2)
    proc = _start(url)
    killed_at = None
    try:
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            writers.start()
            deadline = time.monotonic() + PROGRESS_MAX_S
            while _cursor(conn) < 3000:
                writers.check()
                assert time.monotonic() < deadline, "the chainer made no progress"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            killed_at = _cursor(conn)
            writers.resume.set()  # the other half is written while the service is down...
            time.sleep(0.5)
            proc = _start(url)  # ...and while it restarts
            writers.join(WRITERS_MAX_S)
            events = conn.execute("SELECT count(*) AS n FROM orchestrator.events").fetchone()["n"]
            assert events == writers.committed == TOTAL_EVENTS
            target = conn.execute(
                "SELECT pg_sequence_last_value('orchestrator.events_seq') AS seq"
            ).fetchone()["seq"]
            deadline = time.monotonic() + PROGRESS_MAX_S
            while _cursor(conn) < target:
                assert time.monotonic() < deadline, "the restarted chainer did not catch up"
                time.sleep(0.05)
            assert 3000 <= killed_at < TOTAL_EVENTS, "the kill landed mid-stream"
            links = conn.execute("SELECT count(*) AS n FROM orchestrator.audit_chain").fetchone()
            dupes = conn.execute(
                "SELECT count(*) AS n FROM (SELECT event_id FROM orchestrator.audit_chain"
                " GROUP BY event_id HAVING count(*) > 1) d"
            ).fetchone()
            assert links["n"] == TOTAL_EVENTS
            assert dupes["n"] == 0
            lengths = _verify_chains(conn)
            assert sum(lengths.values()) == TOTAL_EVENTS
            anchors = conn.execute(
                "SELECT DISTINCT ON (tenant) tenant, seq, hash FROM orchestrator.audit_anchors"
                " ORDER BY tenant, seq DESC"
            ).fetchall()
            heads = {
                r["tenant"]: r
                for r in conn.execute(
                    "SELECT DISTINCT ON (tenant) tenant, seq, hash FROM orchestrator.audit_chain"
                    " ORDER BY tenant, seq DESC"
                ).fetchall()
            }
            assert {a["tenant"]: a["hash"] for a in anchors} == {
                t: h["hash"] for t, h in heads.items()
            }
    finally:
        writers.stop(WRITERS_MAX_S)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)
