"""docs/architecture.md is the map from concept to file: every file or folder it names
exists, and the files a newcomer looks for first are where the map says.

A path in backticks is checked when it ends in a file suffix or ``/``. A bare file name
(``_deps.py``) is looked up beside the last path named before it on the same line; a
partial path (``orchestrator_leases/_session.py``, ``queries/jobs.sql``) must be the end of a
tracked path. Patterns (``NNNN_*.sql``, ``<table>``) are not paths.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
_SUFFIXES = (".py", ".sql", ".lua", ".go", ".rs", ".md", ".toml", ".proto", ".yaml")
_TICKED = re.compile(r"`([^`\s]+)`")


def _tree() -> list[str]:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    dirs = {str(Path(f).parent) + "/" for f in files}
    dirs |= {p for d in list(dirs) for p in _parents(d)}
    return [*files, *dirs]


def _parents(directory: str) -> list[str]:
    parts = directory.rstrip("/").split("/")
    return ["/".join(parts[:i]) + "/" for i in range(1, len(parts))]


def _is_path(token: str) -> bool:
    if token.startswith(".") or any(c in token for c in "*<>{}()…") or "NNNN" in token:
        return False
    return token.endswith("/") or token.endswith(_SUFFIXES)


def _resolve(token: str, last: str | None, tree: list[str]) -> str | None:
    """The tracked path ``token`` names, or None."""
    if token in tree:
        return token
    if "/" not in token.rstrip("/") and last is not None:
        beside = str(Path(last).parent / token) if not last.endswith("/") else last + token
        found = [p for p in tree if p == beside or p.endswith("/" + beside)]
        return found[0] if found else None
    found = [p for p in tree if p.endswith("/" + token)]
    return found[0] if found else None


def named_paths() -> list[tuple[int, str, str | None]]:
    """``(line number, token, resolved path)`` of every path the document names."""
    tree = _tree()
    out = []
    for number, line in enumerate(DOC.read_text().splitlines(), start=1):
        last: str | None = None
        for token in _TICKED.findall(line):
            if not _is_path(token):
                continue
            resolved = _resolve(token, last, tree)
            out.append((number, token, resolved))
            if resolved is not None and "/" in token.rstrip("/"):
                last = resolved
    return out


def test_every_path_in_the_map_exists() -> None:
    paths = named_paths()
    assert len(paths) > 100  # the map was read, not skipped
    missing = [f"line {n}: {token}" for n, token, resolved in paths if resolved is None]
    assert not missing, "docs/architecture.md names paths that do not exist:\n" + "\n".join(missing)


def _row(concept: str) -> str:
    rows = [line for line in DOC.read_text().splitlines() if line.startswith(f"| {concept} |")]
    assert len(rows) == 1, f"no single §7 row for {concept!r}"
    return rows[0]


@pytest.mark.parametrize(
    ("concept", "guess"),
    [
        # where a newcomer looks first, by the concept's name
        ("dead letters (operator reads, replay)", "libs/pg/orchestrator_pg/_dead_letters.py"),
        (
            "dead letters (operator reads, replay)",
            "libs/pg/orchestrator_pg/queries/dead_letters.sql",
        ),
        ("throttles", "libs/pg/orchestrator_pg/_throttles.py"),
        ("throttles", "libs/pg/orchestrator_pg/queries/throttles.sql"),
        ("blackouts", "libs/pg/orchestrator_pg/queries/blackouts.sql"),
        ("scheduler settings", "services/scheduler/orchestrator_scheduler/_settings.py"),
        ("the event stream (history, live feed)", "libs/pg/orchestrator_pg/_eventstream.py"),
        ("the event stream (history, live feed)", "libs/pg/orchestrator_pg/queries/events.sql"),
    ],
)
def test_a_newcomers_guess_lands_on_the_file(concept: str, guess: str) -> None:
    assert (ROOT / guess).is_file(), guess
    tree = _tree()
    row = _row(concept)
    named = set()
    last: str | None = None
    for token in _TICKED.findall(row):
        if _is_path(token) and (resolved := _resolve(token, last, tree)) is not None:
            named.add(resolved)
            if "/" in token.rstrip("/"):
                last = resolved
    assert guess in named, (concept, sorted(named))
