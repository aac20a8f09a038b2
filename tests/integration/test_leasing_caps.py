"""Caps enforced before leasing, against the real database: quotas (``max_active``,
``max_per_hour`` + ``burst``, paused) per tenant and per {tenant, job type}, per-source
``max_active``, concurrent claimers, and the wake-ups that make held-back jobs claimable
again (NOTIFY on resume / quota change)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from orchestrator_pg import Completion, Database, LeaseLedger, TxContext

pytestmark = pytest.mark.integration

# Claims run at injected times from T0 on. The session's leases service watchdog expires
# leases by the wall clock, so a lease taken "in the past" would be expired (and re-leased)
# under the test's feet: T0 lies years ahead. (It was the time of import once, and a CI run
# that reached these tests more than LEASE_TTL_S after collection saw its leases expire.)
T0 = datetime(2031, 1, 1, tzinfo=UTC)
LEASE_TTL_S = 600.0


@pytest.fixture
async def database(database_url):
    async with Database(database_url) as db:
        yield db


@pytest.fixture
def ledger(database) -> LeaseLedger:
    return LeaseLedger(database)


@pytest.fixture
def tenant(db) -> str:
    """A fresh tenant per test, so caps never see another test's leases."""
    name = f"caps-{uuid.uuid4().hex[:10]}"
    db.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (name,))
    return name


def _jobs(db, tenant: str, job_type: str, n: int, *, source_id: str | None = None) -> list:
    rows = db.execute(
        "INSERT INTO orchestrator.jobs (id, tenant, job_type, state, reason, payload_digest,"
        " max_attempts, initial_backoff_s, max_backoff_s, backoff_multiplier, not_before,"
        " created_at, updated_at, source_id)"
        " SELECT gen_random_uuid(), %s, %s, 'ready', 'submitted', 'sha256:' || repeat('0', 64),"
        " 3, 1, 10, 2, %s, %s, %s, %s FROM generate_series(1, %s) RETURNING id",
        (tenant, job_type, T0 - timedelta(hours=1), T0, T0, source_id, n),
    ).fetchall()
    return [r[0] for r in rows]


def _quota(db, tenant: str, job_type: str = "", **limits) -> str:
    quota_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO orchestrator.quotas (id, tenant, job_type, max_active, max_per_hour, burst,"
        " paused, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            quota_id,
            tenant,
            job_type,
            limits.get("max_active"),
            limits.get("max_per_hour"),
            limits.get("burst"),
            limits.get("paused", False),
            T0,
            T0,
        ),
    )
    return quota_id


def _source(db, tenant: str, *, max_active: int | None = None) -> str:
    source_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO orchestrator.sources (id, tenant, name, source_type, host, max_active,"
        " created_at, updated_at) VALUES (%s, %s, %s, 'nvd', %s, %s, %s, %s)",
        (
            source_id,
            tenant,
            f"src-{source_id[:8]}",
            f"{source_id[:8]}.example.org",
            max_active,
            T0,
            T0,
        ),
    )
    return source_id


async def _claim(ledger: LeaseLedger, tenant: str, job_types, n: int, now: datetime = T0):
    return await ledger.job_claim_admitted(
        TxContext(tenant=tenant, actor_subject="caps-test", now=now),
        worker_ids=[f"w{i}" for i in range(n)],
        job_types=list(job_types),
        tenants=[tenant],
        lease_ttl_s=LEASE_TTL_S,
    )


async def _complete(ledger: LeaseLedger, tenant: str, rows, now: datetime = T0) -> None:
    outcomes = await ledger.job_complete_many(
        TxContext(tenant=tenant, actor_subject="caps-test", now=now),
        [Completion(r["id"], r["lease_id"]) for r in rows],
        tenants=[tenant],
    )
    assert all(o.ok for o in outcomes)


async def test_tenant_max_active_caps_leases_and_frees_on_completion(db, ledger, tenant) -> None:
    _quota(db, tenant, max_active=3)
    _jobs(db, tenant, "caps.a", 10)
    first = await _claim(ledger, tenant, ["caps.a"], 10)
    assert len(first.rows) == 3
    again = await _claim(ledger, tenant, ["caps.a"], 10)
    assert again.rows == []
    assert again.cap_full  # the dispatcher claims again when a lease ends
    assert again.deferred == []  # held back by the cap, not deferred (no writes)
    await _complete(ledger, tenant, first.rows[:2])
    after = await _claim(ledger, tenant, ["caps.a"], 10)
    assert len(after.rows) == 2


async def test_tenant_wide_cap_spans_job_types(db, ledger, tenant) -> None:
    _quota(db, tenant, max_active=4)
    _jobs(db, tenant, "caps.a", 5)
    _jobs(db, tenant, "caps.b", 5)
    claim = await _claim(ledger, tenant, ["caps.a", "caps.b"], 10)
    assert len(claim.rows) == 4
    assert (await _claim(ledger, tenant, ["caps.a"], 10)).rows == []  # the cap is the tenant's
    assert (await _claim(ledger, tenant, ["caps.b"], 10)).rows == []


async def test_job_type_quota_caps_only_that_type(db, ledger, tenant) -> None:
    _quota(db, tenant, "caps.a", max_active=2)
    _jobs(db, tenant, "caps.a", 6)
    _jobs(db, tenant, "caps.b", 6)
    claim = await _claim(ledger, tenant, ["caps.a", "caps.b"], 12)
    kinds = [r["job_type"] for r in claim.rows]
    assert kinds.count("caps.a") == 2
    assert kinds.count("caps.b") == 6


async def test_hourly_quota_with_burst(db, ledger, tenant) -> None:
    # 3,600 per hour = one token per second; burst 5 = at most 5 at once.
    _quota(db, tenant, max_per_hour=3600, burst=5)
    _jobs(db, tenant, "caps.h", 40)
    first = await _claim(ledger, tenant, ["caps.h"], 20, T0)
    assert len(first.rows) == 5
    assert first.quota_wake_at == T0 + timedelta(seconds=1)  # when the next token comes
    assert (await _claim(ledger, tenant, ["caps.h"], 20, T0 + timedelta(seconds=0.5))).rows == []
    later = await _claim(ledger, tenant, ["caps.h"], 20, T0 + timedelta(seconds=3.2))
    assert len(later.rows) == 3  # 3 whole tokens refilled
    # Never more than burst + rate x elapsed, whatever the claim times.
    leased = 8
    for step in range(1, 20):
        now = T0 + timedelta(seconds=3.2 + step * 0.7)
        leased += len((await _claim(ledger, tenant, ["caps.h"], 20, now)).rows)
        elapsed = (now - T0).total_seconds()
        assert leased <= 5 + elapsed
    assert leased >= 5 + int(3.2 + 19 * 0.7) - 1  # and the refill is not lost either


async def test_burst_zero_spaces_leases_evenly(db, ledger, tenant) -> None:
    _quota(db, tenant, max_per_hour=60, burst=0)  # one a minute
    _jobs(db, tenant, "caps.m", 5)
    assert len((await _claim(ledger, tenant, ["caps.m"], 5, T0)).rows) == 1
    assert (await _claim(ledger, tenant, ["caps.m"], 5, T0 + timedelta(seconds=30))).rows == []
    assert len((await _claim(ledger, tenant, ["caps.m"], 5, T0 + timedelta(seconds=61))).rows) == 1


async def test_paused_quota_leases_nothing_until_resumed(db, ledger, tenant, database_url) -> None:
    quota_id = _quota(db, tenant, "caps.p", paused=True)
    ids = _jobs(db, tenant, "caps.p", 3)
    assert (await _claim(ledger, tenant, ["caps.p"], 3)).rows == []
    states = db.execute(
        "SELECT DISTINCT state FROM orchestrator.jobs WHERE id = ANY(%s)", (ids,)
    ).fetchall()
    assert states == [("ready",)]  # paused jobs stay ready
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as listener:
        await listener.execute("LISTEN orch_jobs_ready")
        db.execute("UPDATE orchestrator.quotas SET paused = false WHERE id = %s", (quota_id,))
        note = await asyncio.wait_for(anext(listener.notifies()), 5)
        assert note.channel == "orch_jobs_ready"
        assert note.payload == ""  # any job type may be claimable now
    assert len((await _claim(ledger, tenant, ["caps.p"], 3)).rows) == 3


async def test_source_max_active(db, ledger, tenant) -> None:
    capped = _source(db, tenant, max_active=2)
    free = _source(db, tenant)
    _jobs(db, tenant, "caps.s", 6, source_id=capped)
    _jobs(db, tenant, "caps.s", 4, source_id=free)
    _jobs(db, tenant, "caps.s", 3)
    claim = await _claim(ledger, tenant, ["caps.s"], 20)
    by_source: dict = {}
    for row in claim.rows:
        by_source[row["source_id"]] = by_source.get(row["source_id"], 0) + 1
    assert by_source == {uuid.UUID(capped): 2, uuid.UUID(free): 4, None: 3}
    assert claim.cap_full
    await _complete(ledger, tenant, [r for r in claim.rows if str(r["source_id"]) == capped][:1])
    more = await _claim(ledger, tenant, ["caps.s"], 20)
    assert [str(r["source_id"]) for r in more.rows] == [capped]


async def test_resuming_a_source_notifies_lease_streams(db, tenant, database_url) -> None:
    source_id = _source(db, tenant)
    db.execute("UPDATE orchestrator.sources SET paused = true WHERE id = %s", (source_id,))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as listener:
        await listener.execute("LISTEN orch_jobs_ready")
        db.execute("UPDATE orchestrator.sources SET paused = false WHERE id = %s", (source_id,))
        note = await asyncio.wait_for(anext(listener.notifies()), 5)
        assert note.channel == "orch_jobs_ready"


async def test_concurrent_claimers_never_exceed_max_active(db, database_url, tenant) -> None:
    _quota(db, tenant, max_active=7)
    _jobs(db, tenant, "caps.c", 60)
    async with Database(database_url) as one, Database(database_url) as two:
        claims = await asyncio.gather(
            *(
                _claim(LeaseLedger(pool), tenant, ["caps.c"], 10)
                for _ in range(4)
                for pool in (one, two)
            )
        )
    assert sum(len(c.rows) for c in claims) == 7
    (leased,) = db.execute(
        "SELECT count(*) FROM orchestrator.jobs WHERE tenant = %s AND state = 'leased'",
        (tenant,),
    ).fetchone()
    assert leased == 7
