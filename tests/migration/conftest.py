"""Fixtures for the migration tests: every test gets its own throwaway databases.

Each database is created with a random name through the admin URL (the session fixture
``admin_url`` of tests/conftest.py) and dropped WITH (FORCE) when the test ends, so a test
may leave connections, locks or half-applied schemas behind without affecting the others.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from orchestrator_pg import create_database, drop_database, migrate


@pytest.fixture
def make_database(admin_url: str) -> Iterator[Callable[[], str]]:
    """A factory of empty databases (returns the URL); all are dropped at teardown."""
    created: list[str] = []

    def make() -> str:
        name = f"orch_mig_{uuid.uuid4().hex[:12]}"
        try:
            url = create_database(admin_url, name)
        except psycopg.OperationalError as exc:
            pytest.fail(f"PostgreSQL is not reachable at {admin_url}: {exc}")
        created.append(name)
        return url

    yield make
    for name in created:
        # retries while an autovacuum worker (not ours to terminate) still holds the database
        drop_database(admin_url, name)


@pytest.fixture
def empty_db(make_database: Callable[[], str]) -> str:
    """One empty database (no schema at all)."""
    return make_database()


@pytest.fixture
async def migrated_db(make_database: Callable[[], str]) -> str:
    """One database with every migration applied (and the partitions migrate() creates)."""
    url = make_database()
    await migrate(url)
    return url
