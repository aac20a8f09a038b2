"""Retention and the audit chain: event partitions are dropped only once every event in
them is chained and anchored; bundles exported before pruning still verify, and the chain
stays verifiable from the recorded links and anchors afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from orchestrator_audit import GENESIS_HASH, Chainer, Signer, chain_hash, event_document
from orchestrator_audit._bundle import build_bundle
from orchestrator_audit._verify import replay_archive, verify_archive
from orchestrator_core import FrozenClock
from orchestrator_pg import (
    AuditLedger,
    Database,
    EventPartitionMaintainer,
    ExportScope,
    SourceFields,
    SourceStore,
    TxContext,
)
from tests.conftest import migrated_database

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture
def retention_db(admin_url):
    with migrated_database(admin_url, "orch_audit_ret", tenants=("acme", "globex")) as url:
        yield url


async def _sources(ledger: SourceStore, tenant: str, at: datetime, n: int) -> None:
    for i in range(n):
        await ledger.source_create(
            TxContext(tenant=tenant, actor_subject="ops", now=at),
            SourceFields(
                name=f"s-{at:%m%d%H%M}-{i}", source_type="nvd", host="h.example", enabled=True
            ),
        )


def _partitions(conn) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'"
    ).fetchall()
    return {r["relname"] for r in rows}


def _walk(conn, tenant: str) -> int:
    """Verifies the tenant's chain over the events still present: each link's hash from
    its event, and each prev_hash a recorded link (the first one after pruning included)."""
    rows = conn.execute(
        "SELECT e.*, c.prev_hash AS chain_prev_hash, c.hash AS chain_hash"
        " FROM orchestrator.events e"
        " JOIN orchestrator.audit_chain c ON c.tenant = e.tenant AND c.seq = e.seq"
        " WHERE e.tenant = %s ORDER BY e.seq",
        (tenant,),
    ).fetchall()
    previous = None
    for row in rows:
        assert chain_hash(row["chain_prev_hash"], event_document(row)) == row["chain_hash"]
        if previous is None:
            if row["chain_prev_hash"] != GENESIS_HASH:
                linked = conn.execute(
                    "SELECT seq FROM orchestrator.audit_chain WHERE tenant = %s AND hash = %s",
                    (tenant, row["chain_prev_hash"]),
                ).fetchone()
                assert linked is not None, "the first remaining link continues a recorded one"
                assert linked["seq"] < row["seq"]
        else:
            assert row["chain_prev_hash"] == previous
        previous = row["chain_hash"]
    return len(rows)


async def test_pruning_keeps_bundles_and_the_chain_verifiable(retention_db):
    old, older, recent = NOW - timedelta(days=9), NOW - timedelta(days=10), NOW - timedelta(days=8)
    signer = Signer.development()
    async with Database(retention_db) as db:
        ledger, audit = SourceStore(db), AuditLedger(db)
        for tenant in ("acme", "globex"):
            await _sources(ledger, tenant, older, 3)
            await _sources(ledger, tenant, old, 3)
        with psycopg.connect(retention_db, autocommit=True, row_factory=dict_row) as conn:
            conn.execute(
                "SELECT orchestrator.events_ensure_partitions(%s::date, 3)", (older.date(),)
            )
        chainer = Chainer(audit, retention_db, clock=FrozenClock(NOW))
        assert await chainer.run_pass() == 24  # each source: its event and its audit event
        window = ExportScope(start=older - timedelta(hours=1), end=old + timedelta(hours=1))
        before = build_bundle("acme", window, await audit.export_data("acme", window), signer)
        assert verify_archive(before.archive, [signer.public_key]).ok
        assert before.manifest["counts"]["history.jsonl"] == 12

        # an unchained day is held back by retention
        await _sources(ledger, "acme", recent, 2)
        maintainer = EventPartitionMaintainer(
            retention_db, retention_days=5, clock=FrozenClock(NOW)
        )
        _, dropped = await maintainer.run_once()
        assert sorted(dropped) == [f"events_{older:%Y%m%d}", f"events_{old:%Y%m%d}"]
        with psycopg.connect(retention_db, autocommit=True, row_factory=dict_row) as conn:
            assert f"events_{recent:%Y%m%d}" in _partitions(conn), "unanchored day kept"

        await chainer.run_pass()
        await _sources(ledger, "acme", NOW, 2)
        await chainer.run_pass()
        _, dropped = await maintainer.run_once()
        assert dropped == [f"events_{recent:%Y%m%d}"]
        with psycopg.connect(retention_db, autocommit=True, row_factory=dict_row) as conn:
            remaining = conn.execute("SELECT count(*) AS n FROM orchestrator.events").fetchone()
            assert remaining["n"] == 4
            assert (
                conn.execute("SELECT count(*) AS n FROM orchestrator.audit_chain").fetchone()["n"]
                == 32
            ), "links survive event retention"
            assert _walk(conn, "acme") == 4
            assert _walk(conn, "globex") == 0

        # the bundle exported before pruning still verifies and replays, offline
        assert verify_archive(before.archive, [signer.public_key]).ok
        assert replay_archive(before.archive).ok
        # and a window after pruning verifies from its first recorded link
        after_scope = ExportScope(start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=1))
        after = build_bundle(
            "acme", after_scope, await audit.export_data("acme", after_scope), signer
        )
        assert verify_archive(after.archive, [signer.public_key]).ok
        head = await audit.chain_head("acme")
        assert head is not None
        assert head["hash"] == after.manifest["chain"]["head"]["hash"]
