"""Daily partitions of the event history: creation ahead of time, moving rows out of the
default partition, retention bounded by the audit anchors, and the leader-only maintainer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from orchestrator_core import FrozenClock
from orchestrator_pg import EventPartitionMaintainer, LeaderLoop
from orchestrator_pg._maintenance import PARTITION_DAYS_AHEAD

pytestmark = pytest.mark.integration

TENANT = "acme"


@pytest.fixture
def db(migrated_db: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(migrated_db, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def name_of(day: date) -> str:
    return f"events_{day:%Y%m%d}"


def today(conn: psycopg.Connection[Any]) -> date:
    row = conn.execute("SELECT current_date AS d").fetchone()
    assert row is not None
    return row["d"]  # type: ignore[no-any-return]


def partitions(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'orchestrator.events'::regclass"
    ).fetchall()
    return {r["relname"] for r in rows}


def ensure(conn: psycopg.Connection[Any], day: date, days: int) -> int:
    row = conn.execute(
        "SELECT orchestrator.events_ensure_partitions(%s, %s) AS n", (day, days)
    ).fetchone()
    assert row is not None
    return int(row["n"])


def drop(conn: psycopg.Connection[Any], cutoff: date, max_seq: int) -> list[str]:
    rows = conn.execute(
        "SELECT orchestrator.events_drop_partitions(%s, %s) AS name", (cutoff, max_seq)
    ).fetchall()
    return [r["name"] for r in rows]


def add_event(conn: psycopg.Connection[Any], day: date, tenant: str = TENANT) -> dict[str, Any]:
    """One event at noon (session time zone) of ``day``; returns seq, event_id, partition."""
    row = conn.execute(
        "WITH e AS (INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type,"
        "   idempotency_key) VALUES (%s::date + time '12:00', %s, %s, 'test.event', %s)"
        "   RETURNING seq, event_id, tableoid)"
        " SELECT e.seq, e.event_id, c.relname AS partition FROM e"
        "   JOIN pg_class c ON c.oid = e.tableoid",
        (day, uuid.uuid4(), tenant, uuid.uuid4().hex),
    ).fetchone()
    assert row is not None
    return row


def count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT count(*) AS n FROM orchestrator.{table}").fetchone()
    assert row is not None
    return int(row["n"])


def test_migrate_creates_partitions_around_today(db: psycopg.Connection[Any]) -> None:
    now = today(db)
    expected = {name_of(now + timedelta(days=i)) for i in range(-1, 8)}
    assert expected <= partitions(db)
    assert "events_default" in partitions(db)


def test_ensure_partitions_creates_n_days_and_is_idempotent(
    db: psycopg.Connection[Any],
) -> None:
    day = today(db) + timedelta(days=200)
    before = partitions(db)

    assert ensure(db, day, 3) == 3
    new = {name_of(day + timedelta(days=i)) for i in range(3)}
    assert partitions(db) - before == new

    bound = db.execute(
        "SELECT pg_get_expr(c.relpartbound, c.oid) AS b FROM pg_class c WHERE c.oid = %s::regclass",
        (f"orchestrator.{name_of(day)}",),
    ).fetchone()
    assert bound is not None
    assert f"'{day:%Y-%m-%d} 00:00:00" in bound["b"]
    assert f"'{day + timedelta(days=1):%Y-%m-%d} 00:00:00" in bound["b"]

    assert ensure(db, day, 3) == 0
    assert partitions(db) - before == new
    assert ensure(db, day + timedelta(days=1), 3) == 1  # only the 4th day is new
    assert ensure(db, day, 0) == 0


def test_rows_in_the_default_partition_move_to_the_new_one(
    db: psycopg.Connection[Any],
) -> None:
    day = today(db) + timedelta(days=30)
    moved = add_event(db, day)
    stays = add_event(db, day + timedelta(days=1))
    assert moved["partition"] == stays["partition"] == "events_default"
    total, in_default = count(db, "events"), count(db, "events_default")

    assert ensure(db, day, 1) == 1

    assert count(db, "events_default") == in_default - 1
    assert count(db, "events") == total
    held = db.execute(f"SELECT seq, event_id FROM orchestrator.{name_of(day)}").fetchall()
    assert held == [{"seq": moved["seq"], "event_id": moved["event_id"]}]
    rest = db.execute("SELECT event_id FROM orchestrator.events_default").fetchall()
    assert {"event_id": stays["event_id"]} in rest
    # The new partition is a real partition: new rows for that day are routed to it.
    assert add_event(db, day)["partition"] == name_of(day)


def test_drop_partitions_respects_cutoff_and_anchored_seq(
    db: psycopg.Connection[Any],
) -> None:
    now = today(db)
    d1, d2, d3 = (now - timedelta(days=100 - i) for i in range(3))
    assert ensure(db, d1, 3) == 3
    e1, e2 = add_event(db, d1), add_event(db, d2)
    assert (e1["partition"], e2["partition"]) == (name_of(d1), name_of(d2))
    assert e2["seq"] > e1["seq"]
    recent = partitions(db) - {name_of(d) for d in (d1, d2, d3)}

    # d1 and d2 end on or before the cutoff, d3 does not; only d1's events are anchored.
    assert drop(db, d3, e1["seq"]) == [name_of(d1)]
    assert name_of(d1) not in partitions(db)
    assert {name_of(d2), name_of(d3)} <= partitions(db)

    # Nothing more while d2 holds a seq above max_seq; then d2 goes, d3 (not before) stays.
    assert drop(db, d3, e2["seq"] - 1) == []
    assert drop(db, d3, e2["seq"]) == [name_of(d2)]
    assert partitions(db) == recent | {name_of(d3)}
    assert count(db, "events") == 0
    # The default partition is never dropped, however old the cutoff.
    assert "events_default" not in drop(db, now + timedelta(days=1000), 2**62)
    assert "events_default" in partitions(db)


async def test_maintainer_creates_partitions_and_retention_waits_for_anchor(
    migrated_db: str,
    db: psycopg.Connection[Any],
) -> None:
    now = today(db)
    clock = FrozenClock(datetime.combine(now + timedelta(days=3), time(12), tzinfo=UTC))
    maintainer = EventPartitionMaintainer(migrated_db, retention_days=30, clock=clock)

    # A tenant with events on a day long past the retention.
    old = now - timedelta(days=100)
    db.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (TENANT,))
    assert ensure(db, old, 1) == 1
    events = [add_event(db, old) for _ in range(3)]
    assert {e["partition"] for e in events} == {name_of(old)}
    before = partitions(db)

    created, dropped = await maintainer.run_once()

    window = {name_of(now + timedelta(days=i)) for i in range(2, 3 + PARTITION_DAYS_AHEAD + 1)}
    assert window <= partitions(db)
    assert created == len(partitions(db) - before) > 0
    assert dropped == []  # no audit anchor yet: the old events are not chained
    assert name_of(old) in partitions(db)

    # An anchor below the newest old event still holds the partition.
    top = max(e["seq"] for e in events)
    db.execute(
        "INSERT INTO orchestrator.audit_anchors (tenant, seq, hash, anchored_at)"
        " VALUES (%s, %s, 'h1', now())",
        (TENANT, top - 1),
    )
    assert await maintainer.run_once() == (0, [])

    db.execute(
        "INSERT INTO orchestrator.audit_anchors (tenant, seq, hash, anchored_at)"
        " VALUES (%s, %s, 'h2', now())",
        (TENANT, top),
    )
    assert await maintainer.run_once() == (0, [name_of(old)])
    assert name_of(old) not in partitions(db)
    assert window <= partitions(db)


async def test_maintainer_without_retention_never_drops(
    migrated_db: str,
    db: psycopg.Connection[Any],
) -> None:
    old = today(db) - timedelta(days=400)
    assert ensure(db, old, 1) == 1
    clock = FrozenClock(datetime.now(UTC))
    _, dropped = await EventPartitionMaintainer(migrated_db, clock=clock).run_once()
    assert dropped == []
    assert name_of(old) in partitions(db)


async def test_the_maintainer_loop_survives_a_pass_that_changes_partitions(
    migrated_db: str, db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The loop the scheduler runs (not just one pass): a pass that creates partitions is
    logged and the loop goes on. Its log once named a LogRecord attribute, so every day's
    new partition raised out of the loop and stopped the scheduler."""
    caplog.set_level(logging.INFO)
    far = datetime(2032, 6, 1, 12, tzinfo=UTC)
    maintainer = EventPartitionMaintainer(migrated_db, clock=FrozenClock(far))
    before = len(partitions(db))
    task = asyncio.create_task(maintainer.run_forever())
    try:
        for _ in range(600):  # generous: a loaded machine
            if "event partitions maintained" in caplog.text or task.done():
                break
            await asyncio.sleep(0.1)
        assert not task.done(), task.exception()
        assert "event partitions maintained" in caplog.text
        assert len(partitions(db)) == before + PARTITION_DAYS_AHEAD + 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_maintainer_is_leader_only(migrated_db: str, db: psycopg.Connection[Any]) -> None:
    far = datetime(2031, 3, 10, 12, tzinfo=UTC)
    maintainer = EventPartitionMaintainer(migrated_db, clock=FrozenClock(far))
    before = partitions(db)

    with psycopg.connect(migrated_db, autocommit=True) as leader:
        leader.execute("SELECT pg_advisory_lock(%s)", (LeaderLoop.EVENT_PARTITIONS.key,))
        assert await maintainer.run_once() == (0, [])
        assert partitions(db) == before
        leader.execute("SELECT pg_advisory_unlock(%s)", (LeaderLoop.EVENT_PARTITIONS.key,))

    # Lock free again: this replica leads, and releases the lock when done.
    assert await maintainer.run_once() == (PARTITION_DAYS_AHEAD + 2, [])
    held = db.execute(
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database"
        "                  WHERE datname = current_database())"
    ).fetchone()
    assert held == {"n": 0}


async def test_racing_maintainers_do_the_work_once(
    migrated_db: str,
    db: psycopg.Connection[Any],
) -> None:
    far = datetime(2032, 7, 1, 12, tzinfo=UTC)
    maintainers = [EventPartitionMaintainer(migrated_db, clock=FrozenClock(far)) for _ in range(4)]

    results = await asyncio.gather(*(m.run_once() for m in maintainers))

    # Whoever led created the window; the others either lost the lock or found it done.
    assert sorted(results) == [(0, [])] * 3 + [(PARTITION_DAYS_AHEAD + 2, [])]
    window = {name_of(far.date() + timedelta(days=i)) for i in range(-1, PARTITION_DAYS_AHEAD + 1)}
    assert window <= partitions(db)


def test_partition_bounds_do_not_depend_on_the_session_time_zone(
    db: psycopg.Connection[Any],
) -> None:
    # migrate() (TimeZone UTC here) made current_date - 1 onwards; add the day before it
    # from a session in another time zone.
    db.execute("SET TimeZone = 'UTC'")
    day = today(db) - timedelta(days=2)
    db.execute("SET TimeZone = 'America/New_York'")

    assert ensure(db, day, 1) == 1

    late = db.execute(
        "WITH e AS (INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type,"
        "   idempotency_key) VALUES (%s, gen_random_uuid(), %s, 'test.event', 'k')"
        "   RETURNING tableoid)"
        " SELECT c.relname FROM e JOIN pg_class c ON c.oid = e.tableoid",
        (datetime.combine(day, time(23, 30), tzinfo=UTC), TENANT),
    ).fetchone()
    assert late == {"relname": name_of(day)}
