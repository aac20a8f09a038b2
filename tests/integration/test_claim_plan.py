"""The claim's work does not grow with the backlog (issue 13 item 3).

``job_claim_admitted`` is run the way the leases service runs it (after
``job_claim_caps_lock`` in the same transaction, so with the claim's planner settings) under
EXPLAIN (ANALYZE, BUFFERS) on backlogs of different shapes, and the buffers it touches are
compared: buffer counts depend on the data and the plan, not on the machine's speed. Both
traps these tests guard were measured: the tenant-spanning index (dropped in 0009) made one
tenant's backlog cost every other tenant's probe a walk over the whole backlog, and a bitmap
scan read every ready job of every tenant when many tenants had a backlog.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from bench.claim_cost import JOB_TYPE, SEED_JOBS, TENANT_PREFIX, tenant_names
from orchestrator_pg import query
from tests.conftest import migrated_database

pytestmark = pytest.mark.integration

BATCH = 50


@pytest.fixture
def url(admin_url: str) -> Iterator[str]:
    with migrated_database(admin_url, "orch_claimplan") as url:
        yield url


def seed(url: str, *, ready: int, tenants: int, extra_tenants: int = 0) -> None:
    """``ready`` jobs spread over ``tenants`` tenants, plus tenants with no job at all."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orchestrator.tenants (id) SELECT %s || g::text"
            " FROM generate_series(0, %s - 1) g",
            (TENANT_PREFIX, tenants + extra_tenants),
        )
        conn.execute(
            SEED_JOBS,
            {
                "tenants": tenant_names(tenants),
                "job_type": JOB_TYPE,
                "state": "ready",
                "n": ready,
            },
        )
        conn.execute("VACUUM ANALYZE orchestrator.jobs")
        conn.execute("ANALYZE orchestrator.tenants")


def claim_plan(url: str, *, per_tenant: int) -> dict[str, Any]:
    """The executed plan of one claim of ``BATCH`` jobs (rolled back)."""
    with psycopg.connect(url) as conn:
        conn.execute(query("job_claim_caps_lock"), {"tenants": None})
        (plan,) = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query("job_claim_admitted"),
            {
                "job_types": [JOB_TYPE],
                "tenants": None,
                "limit": BATCH,
                "per_tenant": per_tenant,
                "worker_ids": ["w"] * BATCH,
                "lease_ttl_s": 30.0,
                "now": datetime.now(UTC),
                "limited": False,
                "allow_tenants": [],
                "allow_hosts": [],
                "allow_counts": [],
                "pass_tenants": [],
                "pass_values": [],
                "vtime": 0.0,
            },
        ).fetchone()
        conn.rollback()
    doc = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
    return doc


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def jobs_scans(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(node type, index) of every scan of orchestrator.jobs."""
    return {
        (n["Node Type"], n.get("Index Name", ""))
        for n in nodes(doc["Plan"])
        if n.get("Relation Name") == "jobs"
    }


def buffers(doc: dict[str, Any]) -> int:
    plan = doc["Plan"]
    return int(plan["Shared Hit Blocks"] + plan["Shared Read Blocks"])


def test_one_tenants_backlog_costs_the_same_at_any_size(url: str) -> None:
    # One database measured at two sizes (the same tenants, so only the backlog differs).
    seed(url, ready=2_000, tenants=1, extra_tenants=3)
    small = claim_plan(url, per_tenant=BATCH)
    seed_more(url, 38_000)
    large = claim_plan(url, per_tenant=BATCH)

    for doc in (small, large):
        assert "JIT" not in doc, doc.get("JIT")
        leased = [n for n in nodes(doc["Plan"]) if n["Node Type"] == "ModifyTable"]
        assert leased
        assert leased[0]["Actual Rows"] == BATCH
    # (At 2,000 rows the planner may rightly prefer a sequential scan.)
    assert ("Index Scan", "jobs_claimable_tenant") in jobs_scans(large)
    assert not any(kind.startswith(("Bitmap", "Seq")) for kind, _ in jobs_scans(large))
    # 20x the backlog: the claim touches about as many buffers (the old index made the empty
    # tenants' probes walk the whole backlog: ~10x here, ~400,000 buffers at a million).
    assert buffers(large) <= 1.5 * buffers(small) + 50, (buffers(small), buffers(large))


def seed_more(url: str, n: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            SEED_JOBS,
            {
                "tenants": tenant_names(1),
                "job_type": JOB_TYPE,
                "state": "ready",
                "n": n,
            },
        )
        conn.execute("VACUUM ANALYZE orchestrator.jobs")


def test_many_tenants_are_probed_only_until_the_batch_is_full(url: str) -> None:
    tenants, per_tenant_backlog = 300, 40
    seed(url, ready=tenants * per_tenant_backlog, tenants=tenants)
    per_tenant = math.ceil(BATCH / tenants)  # as the dispatcher spreads a batch
    doc = claim_plan(url, per_tenant=per_tenant)

    scans = jobs_scans(doc)
    assert ("Index Scan", "jobs_claimable_tenant") in scans
    assert not any(kind.startswith(("Bitmap", "Seq")) for kind, _ in scans), scans
    probes = [
        n
        for n in nodes(doc["Plan"])
        if n.get("Index Name") == "jobs_claimable_tenant" and n.get("Relation Name") == "jobs"
    ]
    # Each tenant's probe stops at its limit (rows read per probe = per_tenant, not 40), and
    # the claim stops probing tenants once its batch is full: it probes (and locks) about as
    # many tenants as it leases jobs, not all 300.
    assert probes[0]["Actual Rows"] <= per_tenant, probes[0]
    assert BATCH <= probes[0]["Actual Loops"] <= BATCH + 1, probes[0]["Actual Loops"]
    leased = [n for n in nodes(doc["Plan"]) if n["Node Type"] == "ModifyTable"]
    assert leased[0]["Actual Rows"] == BATCH
