"""schema.sql (the schema truth) and the migrations applied in order produce the same schema."""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from collections.abc import Callable

import psycopg
import pytest

from orchestrator_pg import migrate, schema_sql
from orchestrator_pg._migrate import PARTITION_DAYS_AT_MIGRATE

pytestmark = pytest.mark.integration

_BOOKKEEPING_TABLE = "schema_migrations"


def _normalised_dump(url: str) -> list[str]:
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is not on PATH"
    done = subprocess.run(
        [
            pg_dump,
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--schema=orchestrator",
            f"--exclude-table=orchestrator.{_BOOKKEEPING_TABLE}",
            "--dbname",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = []
    for line in done.stdout.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--") or re.match(r"^SET\s", stripped):
            continue
        if stripped.startswith("SELECT pg_catalog.set_config('search_path'"):
            continue
        # pg_dump >= 15.14 brackets the dump with a random per-run psql \restrict key.
        if re.match(r"^\\(un)?restrict\s", stripped):
            continue
        lines.append(line.rstrip())
    return lines


async def test_migrations_add_up_to_schema_sql(make_database: Callable[[], str]) -> None:
    migrated = make_database()
    from_truth = make_database()

    await migrate(migrated)
    with psycopg.connect(from_truth, autocommit=True) as conn:
        conn.execute(schema_sql())
        # migrate() also creates the daily partitions around today; make the same ones.
        conn.execute(
            "SELECT orchestrator.events_ensure_partitions(current_date - 1, %s)",
            (PARTITION_DAYS_AT_MIGRATE,),
        )

    a, b = _normalised_dump(migrated), _normalised_dump(from_truth)
    assert any("CREATE TABLE orchestrator.jobs" in line for line in a)
    assert not any(_BOOKKEEPING_TABLE in line for line in a + b)
    if a != b:
        diff = "\n".join(
            difflib.unified_diff(a, b, "migrations applied in order", "schema.sql", lineterm="")
        )
        pytest.fail(f"schema.sql and the migrations disagree:\n{diff}")

    # The comparison is not vacuous: one extra column is a difference.
    with psycopg.connect(from_truth, autocommit=True) as conn:
        conn.execute("ALTER TABLE orchestrator.jobs ADD COLUMN stray integer")
    assert _normalised_dump(from_truth) != a
