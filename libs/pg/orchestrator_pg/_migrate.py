"""Ordered SQL migrations, applied once each, under a lock.

Files in ``migrations/`` are named ``NNNN_description.sql`` and applied in order, each in
its own transaction together with its row in ``orchestrator.schema_migrations``. A session
advisory lock makes concurrent runs (two replicas starting at once) wait for each other, so
the second finds nothing to do. A file that changed after it was applied is an error, not a
silent skip: migrations are append-only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from orchestrator_pg._leadership import LeaderLoop

PARTITION_DAYS_AT_MIGRATE = 9
_FILE_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_BOOKKEEPING = """
CREATE SCHEMA IF NOT EXISTS orchestrator;
CREATE TABLE IF NOT EXISTS orchestrator.schema_migrations (
  version    text PRIMARY KEY,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


class MigrationError(Exception):
    """A migration cannot be applied, or an applied one was edited afterwards."""


def load_migrations() -> list[Migration]:
    """The migrations shipped with the package, in order."""
    folder = resources.files("orchestrator_pg") / "migrations"
    found: list[Migration] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        match = _FILE_RE.match(entry.name)
        if match:
            found.append(Migration(match.group(1), entry.name, entry.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return found


def schema_sql() -> str:
    """The schema truth file (schema.sql): what all migrations together must produce."""
    return (resources.files("orchestrator_pg") / "schema.sql").read_text("utf-8")


async def migrate(conninfo: str) -> list[str]:
    """Applies every migration not applied yet.

    Args:
        conninfo: a libpq connection string or URL.

    Returns:
        The names of the migrations applied by this call (empty when up to date).

    Raises:
        MigrationError: an applied migration's file changed since.
    """
    applied_now: list[str] = []
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (LeaderLoop.MIGRATIONS.key,))
        try:
            await conn.execute(_BOOKKEEPING)
            cur = await conn.execute("SELECT version, checksum FROM orchestrator.schema_migrations")
            applied = {row[0]: row[1] for row in await cur.fetchall()}
            for migration in load_migrations():
                if migration.version in applied:
                    if applied[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.name} was changed after it was applied; "
                            "add a new migration instead of editing an applied one"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO orchestrator.schema_migrations (version, checksum)"
                        " VALUES (%s, %s)",
                        (migration.version, migration.checksum),
                    )
                applied_now.append(migration.name)
            # Partitions for yesterday..a week ahead exist before any service writes, so the
            # first events never land in the default partition (moving rows out of it while
            # others insert would race).
            await conn.execute(
                "SELECT orchestrator.events_ensure_partitions("
                "(now() AT TIME ZONE 'UTC')::date - 1, %s)",
                (PARTITION_DAYS_AT_MIGRATE,),
            )
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (LeaderLoop.MIGRATIONS.key,))
    return applied_now
