"""The audit service as operators run it (``python -m orchestrator_audit``), killed with
SIGKILL in the middle of a stream of 10,000 events and started again: every committed event
is chained exactly once, each tenant's chain verifies link by link, and nothing that was
rolled back or committed out of seq order is missed."""

from __future__ import annotations

import os
import signal
import socket
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

from orchestrator_audit import GENESIS_HASH, chain_hash, event_document
from tests.conftest import migrated_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SECRET = "acceptance-secret-0123456789abcdef"
TENANTS = ("acme", "globex", "initech")
TOTAL_EVENTS = 10_000
BATCH = 50

INSERT_SOURCES = """
INSERT INTO orchestrator.sources (id, tenant, name, source_type, host, created_at, updated_at)
SELECT gen_random_uuid(), %(tenant)s, 's-' || gen_random_uuid(), 'nvd', 'h.example', now(), now()
  FROM generate_series(1, %(n)s)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def audit_restart_db(admin_url) -> Iterator[str]:
    with migrated_database(admin_url, "orch_audit_kill", tenants=TENANTS) as url:
        yield url


def _start(url: str) -> subprocess.Popen:
    port = _free_port()
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
    deadline = time.monotonic() + 20
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


def _writers(url: str, stop_at: int, committed: list[int]) -> list[threading.Thread]:
    """Three writers (one per tenant) commit batches of source inserts; a fourth rolls back
    every batch (seq gaps) and a fifth holds its seqs in a long transaction before
    committing (out-of-order commits)."""
    lock = threading.Lock()

    def commit_batches(tenant: str) -> None:
        with psycopg.connect(url, autocommit=False) as conn:
            while True:
                with lock:
                    if committed[0] >= stop_at:
                        return
                    committed[0] += BATCH
                conn.execute(INSERT_SOURCES, {"tenant": tenant, "n": BATCH})
                conn.commit()
                time.sleep(0.01)

    def roll_back() -> None:
        with psycopg.connect(url, autocommit=False) as conn:
            for _ in range(40):
                conn.execute(INSERT_SOURCES, {"tenant": "acme", "n": 10})
                conn.rollback()
                time.sleep(0.05)

    def slow_commit() -> None:
        with psycopg.connect(url, autocommit=False) as conn:
            for _ in range(5):
                with lock:
                    committed[0] += 20
                conn.execute(INSERT_SOURCES, {"tenant": "globex", "n": 20})
                time.sleep(0.7)  # its seqs stay uncommitted while others commit later ones
                conn.commit()

    threads = [threading.Thread(target=commit_batches, args=(t,)) for t in TENANTS]
    threads += [threading.Thread(target=roll_back), threading.Thread(target=slow_commit)]
    return threads


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
    committed = [0]
    threads = _writers(url, TOTAL_EVENTS - 100, committed)
    proc = _start(url)
    killed_at = None
    try:
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while _cursor(conn) < 3000:
                assert time.monotonic() < deadline, "the chainer made no progress"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
            killed_at = _cursor(conn)
            time.sleep(0.5)  # events keep coming while the service is down
            proc = _start(url)
            for thread in threads:
                thread.join(timeout=120)
            events = conn.execute("SELECT count(*) AS n FROM orchestrator.events").fetchone()["n"]
            assert events == committed[0] == TOTAL_EVENTS
            target = conn.execute(
                "SELECT pg_sequence_last_value('orchestrator.events_seq') AS seq"
            ).fetchone()["seq"]
            deadline = time.monotonic() + 60
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
        for thread in threads:
            thread.join(timeout=30)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)
