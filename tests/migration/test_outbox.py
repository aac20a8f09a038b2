"""The outbox triggers: one event per job transition, in the same transaction, one NOTIFY
per statement; illegal transitions refused with SQLSTATE OR001."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from orchestrator_core import IllegalTransition, JobState, event_type_for

pytestmark = pytest.mark.integration

TENANT = "acme"
SENTINEL = "orch_test_sentinel"
DIGEST = "sha256:" + hashlib.sha256(b"{}").hexdigest()

_INSERT_JOBS = """
INSERT INTO orchestrator.jobs (id, tenant, job_type, state, reason, priority, payload_digest,
    max_attempts, initial_backoff_s, max_backoff_s, backoff_multiplier, not_before,
    created_at, updated_at)
SELECT t.id, %(tenant)s, t.job_type, %(state)s, %(reason)s, 5, %(digest)s,
       3, 1.0, 60.0, 2.0, now(), now(), now()
  FROM unnest(%(ids)s::uuid[], %(job_types)s::text[]) AS t(id, job_type)
"""


@pytest.fixture
def db(migrated_db: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(migrated_db, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("INSERT INTO orchestrator.tenants (id) VALUES (%s)", (TENANT,))
        yield conn


@pytest.fixture
def listener(migrated_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        for channel in ("orch_events", "orch_jobs_ready", SENTINEL):
            conn.execute(f"LISTEN {channel}")
        yield conn


def insert_jobs(
    conn: psycopg.Connection[Any],
    ids: list[uuid.UUID],
    *,
    state: str = "ready",
    job_types: list[str] | None = None,
    reason: str = "submitted",
) -> None:
    conn.execute(
        _INSERT_JOBS,
        {
            "tenant": TENANT,
            "state": state,
            "reason": reason,
            "digest": DIGEST,
            "ids": ids,
            "job_types": job_types or ["fetch"] * len(ids),
        },
    )


def events_of(conn: psycopg.Connection[Any], job_id: uuid.UUID) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT e.*, c.relname AS partition FROM orchestrator.events e"
        " JOIN pg_class c ON c.oid = e.tableoid"
        " WHERE job_id = %s ORDER BY seq",
        (job_id,),
    ).fetchall()


def event_count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) AS n FROM orchestrator.events").fetchone()
    assert row is not None
    return int(row["n"])


def collect_notifies(
    writer: psycopg.Connection[Any], listener: psycopg.Connection[Any]
) -> list[tuple[str, str]]:
    """Every notification delivered so far, in order. A sentinel NOTIFY sent after the
    statements under test marks the end (notifications arrive in commit order)."""
    marker = uuid.uuid4().hex
    writer.execute("SELECT pg_notify(%s, %s)", (SENTINEL, marker))
    got: list[tuple[str, str]] = []
    deadline = time.monotonic() + 60
    for note in listener.notifies(timeout=60):
        if note.channel == SENTINEL and note.payload == marker:
            return got
        got.append((note.channel, note.payload))
        assert time.monotonic() < deadline
    pytest.fail(f"sentinel notification never arrived; got {got}")


def test_insert_writes_one_created_event(db: psycopg.Connection[Any]) -> None:
    job = uuid.uuid4()
    with db.transaction():
        db.execute(
            "SELECT set_config('orchestrator.actor_subject', 'alice', true),"
            " set_config('orchestrator.actor_scopes', 'orch:operate,orch:read', true)"
        )
        insert_jobs(db, [job])

    [event] = events_of(db, job)
    today = db.execute("SELECT to_char(current_date, 'YYYYMMDD') AS d").fetchone()
    assert today is not None
    assert event["type"] == "job.created"
    assert event["tenant"] == TENANT
    assert event["job_type"] == "fetch"
    assert (event["from_state"], event["to_state"]) == (None, "ready")
    assert event["reason"] == "submitted"
    assert event["idempotency_key"] == f"orch-job.created-{job}-0"
    assert event["actor_subject"] == "alice"
    assert event["actor_scopes"] == ["orch:operate", "orch:read"]
    assert event["data"]["payload_digest"] == DIGEST
    assert event["data"]["priority"] == 5
    assert event["data"]["max_attempts"] == 3
    # migrate() made today's partition, so the event did not land in the default one.
    assert event["partition"] == f"events_{today['d']}"


def test_transition_writes_one_event_with_states(db: psycopg.Connection[Any]) -> None:
    job, lease = uuid.uuid4(), uuid.uuid4()
    insert_jobs(db, [job])

    db.execute(
        "UPDATE orchestrator.jobs SET state = 'leased', reason = 'leased', lease_id = %s,"
        " worker_id = 'w-1', attempt = 1, leased_at = now(),"
        " lease_expires_at = now() + interval '30 seconds' WHERE id = %s",
        (lease, job),
    )

    created, leased = events_of(db, job)
    assert created["type"] == "job.created"
    assert leased["type"] == "job.leased"
    assert (leased["from_state"], leased["to_state"]) == ("ready", "leased")
    assert leased["seq"] > created["seq"]
    assert leased["lease_id"] == lease
    assert leased["attempt"] == 1
    assert leased["reason"] == "leased"
    assert leased["idempotency_key"] == f"orch-job.leased-{job}-1"
    assert leased["data"]["worker_id"] == "w-1"
    assert "lease_expires_at" in leased["data"]


def test_illegal_transition_is_refused_and_writes_nothing(
    db: psycopg.Connection[Any],
    listener: psycopg.Connection[Any],
) -> None:
    job, other = uuid.uuid4(), uuid.uuid4()
    insert_jobs(db, [job, other])
    db.execute(
        "UPDATE orchestrator.jobs SET state = 'leased', reason = 'leased' WHERE id = %s", (job,)
    )
    collect_notifies(db, listener)
    before = event_count(db)

    with pytest.raises(psycopg.Error) as caught:
        db.execute("UPDATE orchestrator.jobs SET state = 'pending' WHERE id = %s", (job,))
    assert caught.value.sqlstate == "OR001"
    assert str(job) in str(caught.value)

    # One illegal row fails the whole statement: leased -> succeeded is legal, but
    # ready -> succeeded is not.
    with pytest.raises(psycopg.Error) as caught:
        db.execute(
            "UPDATE orchestrator.jobs SET state = 'succeeded', reason = 'completed'"
            " WHERE id = ANY(%s)",
            ([job, other],),
        )
    assert caught.value.sqlstate == "OR001"
    assert str(other) in str(caught.value)

    assert event_count(db) == before
    rows = db.execute("SELECT id, state FROM orchestrator.jobs").fetchall()
    states = {r["id"]: r["state"] for r in rows}
    assert states == {job: "leased", other: "ready"}
    assert collect_notifies(db, listener) == []


def test_update_without_state_change_writes_no_event(
    db: psycopg.Connection[Any],
    listener: psycopg.Connection[Any],
) -> None:
    job = uuid.uuid4()
    insert_jobs(db, [job])
    collect_notifies(db, listener)
    before = event_count(db)

    db.execute(
        "UPDATE orchestrator.jobs SET priority = 9, progress_percent = 50,"
        " state = state WHERE id = %s",
        (job,),
    )

    assert event_count(db) == before
    assert collect_notifies(db, listener) == []


def test_one_statement_many_rows_one_notify(
    db: psycopg.Connection[Any],
    listener: psycopg.Connection[Any],
) -> None:
    ids = [uuid.uuid4() for _ in range(50)]
    types = ["fetch" if i % 2 else "parse" for i in range(50)]
    insert_jobs(db, ids, state="pending", job_types=types, reason="waiting_on_parents")

    created = collect_notifies(db, listener)
    top = db.execute("SELECT max(seq) AS s FROM orchestrator.events").fetchone()
    assert top is not None
    # 50 job.created events, one NOTIFY; pending jobs are not claimable: no orch_jobs_ready.
    assert created == [("orch_events", str(top["s"]))]

    db.execute(
        "UPDATE orchestrator.jobs SET state = 'ready', reason = 'dependencies_met'"
        " WHERE id = ANY(%s)",
        (ids,),
    )

    ready = db.execute(
        "SELECT seq, job_id, from_state, to_state FROM orchestrator.events"
        " WHERE type = 'job.ready' ORDER BY seq"
    ).fetchall()
    assert len(ready) == 50
    assert {r["job_id"] for r in ready} == set(ids)
    assert {(r["from_state"], r["to_state"]) for r in ready} == {("pending", "ready")}
    notes = collect_notifies(db, listener)
    assert sorted(channel for channel, _ in notes) == ["orch_events", "orch_jobs_ready"]
    payloads = dict(notes)
    assert payloads["orch_events"] == str(max(r["seq"] for r in ready))
    assert sorted(payloads["orch_jobs_ready"].split(",")) == ["fetch", "parse"]


def test_insert_of_ready_jobs_wakes_lease_streams(
    db: psycopg.Connection[Any],
    listener: psycopg.Connection[Any],
) -> None:
    insert_jobs(db, [uuid.uuid4(), uuid.uuid4()], job_types=["fetch", "fetch"])
    notes = dict(collect_notifies(db, listener))
    assert notes["orch_jobs_ready"] == "fetch"


def test_sql_event_type_agrees_with_the_state_machine(db: psycopg.Connection[Any]) -> None:
    pairs = [(prev, new) for prev in (None, *JobState) for new in JobState]
    rows = db.execute(
        "SELECT f, t, orchestrator.job_event_type(f, t) AS type"
        " FROM unnest(%s::text[], %s::text[]) AS p(f, t)",
        ([None if p is None else p.value for p, _ in pairs], [n.value for _, n in pairs]),
    ).fetchall()
    sql = {(r["f"], r["t"]): r["type"] for r in rows}
    assert len(sql) == len(pairs)

    mismatches = []
    for prev, new in pairs:
        try:
            expected: str | None = event_type_for(prev, new)
        except IllegalTransition:
            expected = None
        got = sql[(None if prev is None else prev.value, new.value)]
        if got != expected:
            mismatches.append(f"{prev} -> {new}: python {expected!r}, sql {got!r}")
    assert not mismatches, "\n".join(mismatches)
    assert sum(v is not None for v in sql.values()) == 14


@pytest.mark.parametrize("state", ["leased", "succeeded", "dead", "canceled"])
def test_insert_in_a_state_illegal_at_creation_is_refused(
    db: psycopg.Connection[Any],
    state: str,
) -> None:
    before = event_count(db)
    with pytest.raises(psycopg.Error) as caught:
        insert_jobs(db, [uuid.uuid4()], state=state)
    assert caught.value.sqlstate == "OR001"
    assert event_count(db) == before
