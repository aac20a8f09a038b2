"""Throwaway databases for test sessions and benchmarks."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DROP_RETRIES = 60
DROP_RETRY_S = 0.25


def database_url_for(admin_url: str, name: str) -> str:
    """``admin_url`` with its database name replaced by ``name``."""
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


def create_database(admin_url: str, name: str) -> str:
    """Creates database ``name`` and returns its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url_for(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drops database ``name``, ending our own sessions on it. An autovacuum worker (owned
    by the superuser, so not ours to terminate) can hold it for a moment: retry then."""
    stmt = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    for attempt in range(DROP_RETRIES):
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(stmt)
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == DROP_RETRIES - 1:
                raise
            time.sleep(DROP_RETRY_S)
