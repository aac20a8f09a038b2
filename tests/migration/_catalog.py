"""A comparable snapshot of what schema ``orchestrator`` holds."""

from __future__ import annotations

from typing import Any

import psycopg

_QUERIES: dict[str, str] = {
    "tables": """
        SELECT c.relname, c.relkind::text, c.relispartition,
               coalesce(pg_get_expr(c.relpartbound, c.oid), '')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'orchestrator' AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
         ORDER BY 1""",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), '')
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = 'orchestrator' AND c.relkind IN ('r', 'p')
           AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
         WHERE schemaname = 'orchestrator' ORDER BY 1, 2""",
    "constraints": """
        SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
          FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'orchestrator' ORDER BY 1, 2""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), md5(pg_get_functiondef(p.oid))
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'orchestrator' ORDER BY 1, 2""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
          FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'orchestrator' AND NOT t.tgisinternal ORDER BY 1, 2""",
    "migrations": """
        SELECT version, checksum, applied_at FROM orchestrator.schema_migrations ORDER BY 1""",
}


def catalog_snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Tables, columns, indexes, constraints, functions, triggers and applied migrations."""
    with psycopg.connect(url, autocommit=True) as conn:
        return {key: conn.execute(sql).fetchall() for key, sql in _QUERIES.items()}
