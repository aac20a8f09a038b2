"""The gateway's Idempotency-Key records in PostgreSQL (orchestrator_pg.IdempotencyStore):
one owner per key, fenced writes, takeover after a dead owner's lock runs out, tenant scope,
TTL, and the leader-only cleanup. Time is moved with ``now``, never slept."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from orchestrator_pg import (
    Database,
    IdempotencyKey,
    IdempotencyKeyCleaner,
    IdempotencyStore,
    LeaderLoop,
    Leadership,
    StoredAnswer,
)

pytestmark = pytest.mark.integration

T0 = datetime(2030, 1, 1, tzinfo=UTC)
TTL_S = 3600.0
LOCK_S = 10.0
ANSWER = StoredAnswer(201, (("content-type", "application/json"),), b'{"id": "j-1"}')


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[IdempotencyStore]:
    async with Database(database_url, min_size=1, max_size=4) as db:
        yield IdempotencyStore(db)


def _key(tenant: str = "acme", key: str | None = None) -> IdempotencyKey:
    return IdempotencyKey(tenant, "tester", "/api/v1/orchestrator/jobs", key or uuid.uuid4().hex)


async def test_first_claim_owns_the_key_and_its_answer_is_replayed(store) -> None:
    key = _key()
    first = await store.begin(key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=T0)
    assert first.state == "claimed"
    assert first.claim_id is not None
    second = await store.begin(key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=T0)
    assert second.state == "in_flight"
    assert (await store.begin(key, b"f2", ttl_s=TTL_S, lock_s=LOCK_S, now=T0)).state == "mismatch"

    assert await store.finish(key, first.claim_id, ANSWER, now=T0)
    replay = await store.begin(
        key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=T0 + timedelta(hours=0.5)
    )
    assert replay.state == "answered"
    assert replay.answer == ANSWER
    # Long after the owner's lock, an answered key is still only replayed.
    later = T0 + timedelta(seconds=TTL_S - 1)
    assert (await store.begin(key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=later)).state == (
        "answered"
    )


async def test_a_dead_owners_key_is_taken_over_and_its_late_writes_change_nothing(store) -> None:
    key = _key()
    dead = await store.begin(key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=T0)
    assert dead.claim_id is not None
    # Still locked: a repeat waits.
    early = T0 + timedelta(seconds=LOCK_S - 1)
    assert (await store.begin(key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=early)).state == (
        "in_flight"
    )
    # Renewed by its owner, the lock holds past the first LOCK_S.
    assert await store.extend(key, dead.claim_id, lock_s=LOCK_S, now=early)
    assert (
        await store.begin(key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=T0 + timedelta(seconds=15))
    ).state == "in_flight"
    # No renewal any more: the next repeat takes the key over.
    after = T0 + timedelta(seconds=2 * LOCK_S)
    heir = await store.begin(key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=after)
    assert heir.state == "claimed"
    assert heir.claim_id not in (None, dead.claim_id)
    assert heir.claim_id is not None
    # The old owner wakes up: fenced out.
    assert not await store.extend(key, dead.claim_id, lock_s=LOCK_S, now=after)
    assert not await store.finish(key, dead.claim_id, StoredAnswer(500, (), b"late"), now=after)
    await store.release(key, dead.claim_id)
    assert (await store.begin(key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=after)).state == (
        "in_flight"
    )
    assert await store.finish(key, heir.claim_id, ANSWER, now=after)
    got = await store.begin(key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=after)
    assert got.answer == ANSWER


async def test_a_released_key_runs_again(store) -> None:
    key = _key()
    first = await store.begin(key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=T0)
    assert first.claim_id is not None
    await store.release(key, first.claim_id)
    again = await store.begin(key, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=T0)
    assert again.state == "claimed"


async def test_keys_are_scoped_by_tenant_and_row_level_security_holds(
    store, database_url: str, tenants: tuple[str, str]
) -> None:
    name = uuid.uuid4().hex
    mine, theirs = _key(tenants[0], name), _key(tenants[1], name)
    a = await store.begin(mine, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=T0)
    b = await store.begin(theirs, b"f2", ttl_s=TTL_S, lock_s=LOCK_S, now=T0)
    assert a.state == b.state == "claimed"
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT set_config('orchestrator.isolate_tenant', %s, true)", (tenants[0],))
        seen = conn.execute(
            "SELECT tenant FROM orchestrator.idempotency_keys WHERE key = %s", (name,)
        ).fetchall()
    assert seen == [(tenants[0],)]


async def test_expired_keys_read_as_absent_and_the_cleanup_deletes_them(
    store, database_url: str
) -> None:
    answered, running, fresh = _key(), _key(), _key()
    first = await store.begin(answered, b"f1", ttl_s=60, lock_s=LOCK_S, now=T0)
    assert first.claim_id is not None
    assert await store.finish(answered, first.claim_id, ANSWER, now=T0)
    owner = await store.begin(running, b"f1", ttl_s=60, lock_s=LOCK_S, now=T0)
    assert owner.claim_id is not None
    await store.begin(fresh, b"f1", ttl_s=TTL_S, lock_s=LOCK_S, now=T0)

    def present() -> set[str]:
        with psycopg.connect(database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT key FROM orchestrator.idempotency_keys WHERE key = ANY(%s)",
                ([answered.key, running.key, fresh.key],),
            ).fetchall()
        return {row[0] for row in rows}

    cleaner = IdempotencyKeyCleaner(database_url)
    assert await cleaner.run_once(now=T0 + timedelta(seconds=59)) == 0
    assert present() == {answered.key, running.key, fresh.key}

    # Past the TTL but while the running request's lock is still renewed: only the answered
    # one goes.
    past_ttl = T0 + timedelta(seconds=61)
    assert await store.extend(running, owner.claim_id, lock_s=LOCK_S, now=past_ttl)
    assert await cleaner.run_once(now=past_ttl) == 1
    assert present() == {running.key, fresh.key}
    # Another replica leading the loop: this one does nothing.
    async with Leadership(database_url, LeaderLoop.IDEMPOTENCY_KEYS) as other:
        assert await other.ensure()
        assert await cleaner.run_once(now=past_ttl + timedelta(hours=1)) is None
    assert present() == {running.key, fresh.key}
    # Its lock ran out too: gone; the fresh key stays.
    assert await cleaner.run_once(now=past_ttl + timedelta(seconds=LOCK_S + 1)) == 1
    assert present() == {fresh.key}

    # An expired key that is still in the table reads as absent: a new claim takes it.
    stale = _key()
    await store.begin(stale, b"f1", ttl_s=60, lock_s=LOCK_S, now=T0)
    renewed = await store.begin(stale, b"f2", ttl_s=60, lock_s=LOCK_S, now=T0 + timedelta(hours=2))
    assert renewed.state == "claimed"
