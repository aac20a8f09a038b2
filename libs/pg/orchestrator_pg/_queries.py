"""Loads the named SQL of queries/*.sql (STYLE rule 3: SQL lives in .sql files).

Each query starts with a ``-- name: noun_verb`` header line; the text up to the next header
is the query. Python never builds SQL from strings: it looks a query up by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources

_HEADER_RE = re.compile(r"^-- name: ([a-z][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str, source: str = "<string>") -> dict[str, str]:
    """Splits one .sql file into ``{name: sql}``.

    Raises:
        ValueError: a name appears twice or a header has no query under it.
    """
    found: dict[str, str] = {}
    headers = list(_HEADER_RE.finditer(text))
    for index, match in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        body = text[match.end() : end].strip()
        name = match.group(1)
        if name in found:
            raise ValueError(f"{source}: query {name!r} is defined twice")
        if not body:
            raise ValueError(f"{source}: query {name!r} has no SQL")
        found[name] = body
    return found


@cache
def queries() -> Mapping[str, str]:
    """All named queries of the package, loaded once."""
    merged: dict[str, str] = {}
    folder = resources.files("orchestrator_pg") / "queries"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, sql in parse_queries(entry.read_text("utf-8"), entry.name).items():
            if name in merged:
                raise ValueError(f"{entry.name}: query {name!r} is defined in two files")
            merged[name] = sql
    return merged


def query(name: str) -> str:
    """The SQL text of one named query.

    Raises:
        KeyError: no query has that name.
    """
    try:
        return queries()[name]
    except KeyError:
        raise KeyError(f"no SQL query named {name!r} in orchestrator_pg/queries") from None
