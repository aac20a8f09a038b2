"""migrate(): applies every migration once, under a lock, and refuses edited ones."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from orchestrator_pg import MigrationError, load_migrations, migrate
from tests.migration._catalog import catalog_snapshot

pytestmark = pytest.mark.integration

STELLA = Path(sys.prefix) / "bin" / "stella"


def _applied_rows(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT version, checksum FROM orchestrator.schema_migrations ORDER BY version"
        ).fetchall()


def _advisory_locks_held(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_there_is_at_least_one_migration() -> None:
    migrations = load_migrations()
    assert migrations, "no migration files shipped with orchestrator_pg"
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)


async def test_migrate_applies_everything_once_then_is_a_no_op(empty_db: str) -> None:
    expected = [m.name for m in load_migrations()]

    assert await migrate(empty_db) == expected
    first = catalog_snapshot(empty_db)
    assert [row[0] for row in first["migrations"]] == [m.version for m in load_migrations()]
    assert {"jobs", "events", "events_default", "schema_migrations"} <= {
        row[0] for row in first["tables"]
    }
    assert any(row[1] == "jobs_outbox_update" for row in first["triggers"])

    assert await migrate(empty_db) == []
    second = catalog_snapshot(empty_db)
    for key in first:
        assert second[key] == first[key], f"second migrate() changed {key}"
    assert _advisory_locks_held(empty_db) == 0


def test_cli_migrate_twice(empty_db: str) -> None:
    assert STELLA.exists(), f"{STELLA} not installed"
    cmd = [str(STELLA), "orchestrator", "migrate", "--database-url", empty_db]

    first = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert first.returncode == 0, first.stderr
    for migration in load_migrations():
        assert migration.name in first.stdout

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    assert [row[0] for row in _applied_rows(empty_db)] == [m.version for m in load_migrations()]


async def test_concurrent_migrations_apply_each_file_exactly_once(
    make_database: Callable[[], str],
) -> None:
    url = make_database()

    results = await asyncio.gather(migrate(url), migrate(url))

    names = [m.name for m in load_migrations()]
    # One call applied everything, the other waited on the lock and found nothing to do.
    assert sorted(results, key=len) == [[], names]
    assert _applied_rows(url) == [(m.version, m.checksum) for m in load_migrations()]
    assert _advisory_locks_held(url) == 0


async def test_edited_migration_is_refused(migrated_db: str) -> None:
    first = load_migrations()[0]
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute(
            "UPDATE orchestrator.schema_migrations SET checksum = %s WHERE version = %s",
            ("0" * 64, first.version),
        )
    before = catalog_snapshot(migrated_db)

    with pytest.raises(MigrationError, match=first.name):
        await migrate(migrated_db)

    # Nothing was applied or re-applied, and the migration lock was released.
    assert catalog_snapshot(migrated_db) == before
    assert _advisory_locks_held(migrated_db) == 0
    with pytest.raises(MigrationError):
        await asyncio.wait_for(migrate(migrated_db), timeout=10)


def test_cli_reports_an_edited_migration(migrated_db: str) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("UPDATE orchestrator.schema_migrations SET checksum = 'edited'")
    done = subprocess.run(
        [str(STELLA), "orchestrator", "migrate", "--database-url", migrated_db],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "changed after it was applied" in done.stderr
