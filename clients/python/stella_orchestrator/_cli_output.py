"""Output of every REST command: ``-o json`` and ``-o yaml`` print the gateway's answer as it
came (stable keys, for scripts); ``-o table`` renders it for people. One method,
:meth:`Output.show`, decides; commands only say which columns or fields a table has.
Messages, progress bars and errors go to stderr, so stdout stays parseable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_AUTH, EXIT_SERVER = 0, 1, 2, 3, 4, 5


class CliError(Exception):
    """A refusal before or after the REST call (an unreadable file, a timeout): its message
    and exit code."""

    def __init__(self, code: int, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.details = list(details)


# (header, dotted key) pairs of a table's columns.
Columns = Sequence[tuple[str, str]]
TABLE_WIDTH_OFF_TTY = 240


def pick(row: Any, key: str) -> Any:
    """The value at a dotted key (``"key.host"``), None where a part is missing."""
    value = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def cell(value: Any) -> str:
    """A value as a table cell: ``-`` for nothing, yes/no, compact JSON for structures."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if not value and isinstance(value, dict | list):
        return "-"
    flat = (str, int, float, bool)
    if isinstance(value, dict) and all(isinstance(v, flat) for v in value.values()):
        return " ".join(f"{k}={cell(v)}" for k, v in sorted(value.items()))  # job counts
    if isinstance(value, list) and all(isinstance(v, flat) for v in value):
        return ", ".join(cell(v) for v in value)  # ids, scopes
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


class Output:
    """Prints a command's result in the chosen format, and messages on stderr.

    Args:
        mode: ``table``, ``json`` or ``yaml``.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        # Off a terminal (pipes, files, tests) tables get room instead of 80 columns.
        width = None if sys.stdout.isatty() else TABLE_WIDTH_OFF_TTY
        self.out = Console(highlight=False, soft_wrap=True, width=width)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def show(
        self,
        value: Any,
        *,
        columns: Columns | None = None,
        items: str | None = None,
        fields: Sequence[str] | None = None,
        title: str = "",
        summary: Callable[[Any], str] | None = None,
        render: Callable[[Any], None] | None = None,
    ) -> None:
        """Prints ``value``: as data (json, yaml) or for people: rows of ``value[items]``
        (or of ``[value]``) in ``columns``, one record (``fields``; all keys when None), the
        one line ``summary`` makes, or what ``render`` prints (several tables)."""
        if self.mode in ("json", "yaml"):
            self.data(value)
        elif render is not None:
            render(value)
        elif summary is not None:
            self.out.print(summary(value), markup=False)
        elif columns is not None:
            rows = value.get(items, []) if items else value
            self.table(rows if isinstance(rows, list) else [rows], columns, title)
        else:
            self.record(value, fields)

    def data(self, value: Any) -> None:
        """Prints ``value`` as JSON or YAML (``-o table`` prints JSON too: raw data)."""
        if self.mode == "yaml":
            sys.stdout.write(dump_yaml(value))
        else:
            sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")
        sys.stdout.flush()

    def table(self, rows: Iterable[dict[str, Any]], columns: Columns, title: str = "") -> None:
        table = Table(title=title or None)
        for header, _ in columns:
            table.add_column(header, overflow="fold")
        count = 0
        for row in rows:
            table.add_row(*(cell(pick(row, key)) for _, key in columns))
            count += 1
        if count:
            self.out.print(table)
        else:
            self.note(f"{title}: no items" if title else "no items")

    def record(self, value: dict[str, Any], fields: Sequence[str] | None = None) -> None:
        table = Table(show_header=False, box=None)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for key in fields or sorted(value):
            table.add_row(key, cell(pick(value, key)))
        self.out.print(table)

    def note(self, message: str) -> None:
        self.err.print(message, markup=False)

    def error(self, message: str, details: Iterable[str] = ()) -> None:
        self.err.print(f"error: {message}", markup=False)
        for line in details:
            self.err.print(f"  {line}", markup=False)


def dump_yaml(value: Any) -> str:
    """YAML of a JSON value (block style, keys sorted, unicode kept)."""
    yaml = require_yaml()
    return str(yaml.safe_dump(value, sort_keys=True, default_flow_style=False, allow_unicode=True))


def require_yaml() -> Any:
    """The ``yaml`` module (PyYAML, in the ``cli`` extra).

    Raises:
        CliError: PyYAML is not installed (exit 2); the message says how to get it.
    """
    try:
        import yaml  # type: ignore[import-untyped]  # no stubs in the lock; used as Any
    except ImportError:  # pragma: no cover - the dev environment has it
        raise CliError(
            EXIT_USAGE, "YAML needs PyYAML: pip install 'stella-orchestrator[cli]' (or use JSON)"
        ) from None
    return yaml
