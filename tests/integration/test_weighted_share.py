"""Weighted fair share (issue 21 item 3): a tenant's weight is its share of the slots
against other tenants with ready jobs, across claims of any size (stride scheduling: the
claimer's Passes), with caps still applying."""

from __future__ import annotations

import random
import uuid

import psycopg
import pytest

from bench.claim_cost import SEED_JOBS
from orchestrator_pg import Database, LeaseLedger, Passes, TxContext

pytestmark = pytest.mark.integration

CTX = TxContext(tenant="", actor_subject="weighted-share-test")


def _tenants(db: psycopg.Connection, weights: dict[str, int], job_type: str, n: int) -> None:
    for tenant, weight in weights.items():
        db.execute(
            "INSERT INTO orchestrator.tenants (id, weight) VALUES (%s, %s)", (tenant, weight)
        )
        db.execute(
            SEED_JOBS,
            {"tenants": [tenant], "job_type": job_type, "state": "ready", "n": n},
        )


async def _lease_counts(
    url: str, job_type: str, tenants: list[str], leases: int, rng: random.Random
) -> dict[str, int]:
    """Claims of random sizes (1-20 slots, as freed slots come back) until ``leases`` jobs are
    leased; the leases per tenant."""
    counts = dict.fromkeys(tenants, 0)
    passes = Passes()
    async with Database(url) as db:
        ledger = LeaseLedger(db)
        while sum(counts.values()) < leases:
            size = min(rng.randint(1, 20), leases - sum(counts.values()))
            claim = await ledger.job_claim_admitted(
                CTX, worker_ids=["w"] * size, job_types=[job_type], tenants=tenants, passes=passes
            )
            assert claim.rows, "both backlogs are deep enough for every claim"
            for row in claim.rows:
                counts[row["tenant"]] += 1
    return counts


@pytest.mark.parametrize("seed", [random.randrange(1 << 30) for _ in range(2)])
async def test_weights_one_and_three_share_leases_one_to_three(
    database_url: str, db: psycopg.Connection, seed: int
) -> None:
    rng = random.Random(seed)
    suffix = uuid.uuid4().hex[:8]
    light, heavy = f"wfs-a-{suffix}", f"wfs-b-{suffix}"
    job_type = f"wfs.{suffix}"
    leases = 2_000
    _tenants(db, {light: 1, heavy: 3}, job_type, leases)  # equal backlogs, never drained

    counts = await _lease_counts(database_url, job_type, [light, heavy], leases, rng)

    share = counts[heavy] / leases
    assert abs(share - 0.75) <= 0.075, (seed, counts)  # 1:3 within +-10 %


async def test_equal_weights_alternate_even_with_one_slot_claims(
    database_url: str, db: psycopg.Connection
) -> None:
    suffix = uuid.uuid4().hex[:8]
    tenants = [f"wfs-{i}-{suffix}" for i in range(3)]
    job_type = f"wfs.{suffix}"
    _tenants(db, dict.fromkeys(tenants, 1), job_type, 100)
    passes = Passes()
    order = []
    async with Database(database_url) as pool:
        ledger = LeaseLedger(pool)
        for _ in range(30):
            claim = await ledger.job_claim_admitted(
                CTX, worker_ids=["w"], job_types=[job_type], tenants=tenants, passes=passes
            )
            order += [row["tenant"] for row in claim.rows]
    # Round robin: every window of three single-slot claims serves each tenant once.
    assert all(sorted(order[i : i + 3]) == sorted(tenants) for i in range(0, 30, 3)), order


def test_the_cli_sets_and_lists_a_weight(
    database_url: str, db: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    from stella_orchestrator.cli import main

    tenant = f"wfs-cli-{uuid.uuid4().hex[:8]}"
    cli = ["orchestrator", "tenants"]
    url = ["--database-url", database_url]
    assert main([*cli, "weight", tenant, "3", *url]) == 2  # not registered yet
    assert "tenants add" in capsys.readouterr().err
    assert main([*cli, "add", tenant, *url]) == 0
    assert main([*cli, "weight", tenant, "3", *url]) == 0
    assert db.execute(
        "SELECT weight FROM orchestrator.tenants WHERE id = %s", (tenant,)
    ).fetchone() == (3,)
    with pytest.raises(SystemExit):  # argparse: out of range
        main([*cli, "weight", tenant, "0", *url])
    capsys.readouterr()
    assert main([*cli, "list", *url]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [tenant, "3"] in [row[:2] for row in listed]
