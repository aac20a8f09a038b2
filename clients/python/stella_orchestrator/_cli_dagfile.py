"""Run and job files (``runs create -f dag.yaml``, ``jobs submit -f job.json``): read as YAML
or JSON, checked before anything is sent, with errors that name the file, the path of the bad
field (``jobs[3].depends_on[0]``) and, for YAML, its line.

The schemas are the request bodies of ``POST /runs`` and ``POST /jobs`` in the JSON Schema
subset the gateway's OpenAPI document uses; ``tests/gateway/test_cli_parity.py`` compares them
with that document, so the CLI refuses exactly what the gateway would. On top, the DAG is
checked as a whole: unique keys, dependencies that name a job of the file, no cycle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stella_orchestrator._cli_output import EXIT_USAGE, CliError, require_yaml

Schema = dict[str, Any]


def _text(max_length: int, min_length: int = 0) -> Schema:
    schema: Schema = {"type": "string", "maxLength": max_length}
    if min_length:
        schema["minLength"] = min_length
    return schema


def _int(low: int, high: int) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high}


LABELS: Schema = {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 64}
JOB_SCHEMA: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["job_type"],
    "properties": {
        "key": _text(200),
        "job_type": _text(200, 1),
        "source_id": _text(64),
        "project": _text(200),
        "priority": _int(-1000, 1000),
        "payload": {"type": "object", "additionalProperties": True},
        "idempotency_key": _text(255),
        "correlation_id": _text(255),
        "max_attempts": _int(0, 100),
        "depends_on": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
        "labels": LABELS,
    },
}
RUN_SCHEMA: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["jobs"],
    "properties": {
        "name": _text(200),
        "project": _text(200),
        "source_id": _text(64),
        "correlation_id": _text(255),
        "idempotency_key": _text(255),
        "labels": LABELS,
        "jobs": {"type": "array", "items": JOB_SCHEMA, "minItems": 1, "maxItems": 10_000},
    },
}
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "object": (dict,),
    "array": (list,),
}


def check(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Every way ``value`` breaks ``schema``, each as ``"path: what is wrong"``."""
    where = path or "(top)"
    kind = schema.get("type")
    if kind and (not isinstance(value, _TYPES[kind]) or isinstance(value, bool)):
        return [
            f"{where}: expected {'an' if kind[0] in 'aeio' else 'a'} {kind}, got {_show(value)}"
        ]
    errors: list[str] = []
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{where}: longer than {schema['maxLength']} characters")
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: must not be empty")
    elif isinstance(value, int):
        if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
            errors.append(f"{where}: {value} is not in [{schema['minimum']}, {schema['maximum']}]")
    elif isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            limits = f"{schema.get('minItems', 0)} to {schema.get('maxItems', 'any')}"
            errors.append(f"{where}: has {len(value)} items, expected {limits}")
        for i, item in enumerate(value):
            errors += check(item, schema.get("items", {}), f"{path}[{i}]")
    elif isinstance(value, dict):
        errors += _check_object(value, schema, path)
    return errors


def _check_object(value: dict[str, Any], schema: Schema, path: str) -> list[str]:
    errors: list[str] = []
    prefix = f"{path}." if path else ""
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            errors.append(f"{prefix}{name}: required")
    if len(value) > schema.get("maxProperties", len(value)):
        errors.append(f"{path or '(top)'}: more than {schema['maxProperties']} entries")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            errors += check(item, properties[name], f"{prefix}{name}")
        elif extra is False:
            known = ", ".join(sorted(properties))
            errors.append(f"{prefix}{name}: unknown field (known: {known})")
        elif isinstance(extra, dict):
            errors += check(item, extra, f"{prefix}{name}")
    return errors


def _show(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_dag(jobs: list[dict[str, Any]]) -> list[str]:
    """Keys unique, dependencies name a job of the run, no job waits on itself, no cycle."""
    errors: list[str] = []
    index: dict[str, int] = {}
    for i, job in enumerate(jobs):
        key = job.get("key", "")
        if not isinstance(key, str):
            continue  # reported by the field check
        if key and key in index:
            errors.append(f"jobs[{i}].key: {key!r} is also the key of jobs[{index[key]}]")
        elif key:
            index[key] = i
    for i, job in enumerate(jobs):
        parents = job.get("depends_on", [])
        for j, parent in enumerate(parents if isinstance(parents, list) else []):
            where = f"jobs[{i}].depends_on[{j}]"
            if not isinstance(parent, str):
                continue  # reported by the field check
            if parent == job.get("key"):
                errors.append(f"{where}: a job cannot depend on itself")
            elif parent not in index:
                known = ", ".join(sorted(index)) or "none: give jobs a key"
                errors.append(f"{where}: no job has key {parent!r} (keys: {known})")
    return errors


def check_cycle(jobs: list[dict[str, Any]]) -> list[str]:
    """The first dependency cycle, if any (only for jobs that passed every other check)."""
    index = {job["key"]: i for i, job in enumerate(jobs) if job.get("key")}
    # Depth-first search with colours; the first back edge found names the cycle.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(key: str) -> list[str]:
        state[key] = 1
        stack.append(key)
        for parent in jobs[index[key]].get("depends_on", []):
            if state.get(parent) == 1:
                loop = [*stack[stack.index(parent) :], parent]
                return [f"jobs[{index[key]}].depends_on: a cycle: {' -> '.join(loop)}"]
            if parent not in state and (found := visit(parent)):
                return found
        stack.pop()
        state[key] = 2
        return []

    for key in index:
        if key not in state and (found := visit(key)):
            return found
    return []


def load(path: str, schema: Schema) -> dict[str, Any]:
    """The document in ``path`` (``-`` reads stdin) once it is valid for ``schema``.

    Raises:
        CliError: Unreadable, not YAML or JSON, or invalid (exit 2); every error is listed.
    """
    try:
        text = Path("/dev/stdin" if path == "-" else path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(EXIT_USAGE, f"cannot read {path}: {exc}") from None
    value, lines = _parse(path, text)
    errors = check(value, schema)
    if schema is RUN_SCHEMA and isinstance(value, dict) and isinstance(value.get("jobs"), list):
        # Field errors and DAG errors together: one round of fixes, not two.
        errors += check_dag([j if isinstance(j, dict) else {} for j in value["jobs"]])
        errors = errors or check_cycle(value["jobs"])
    if errors:
        details = [text for _, text in sorted(_with_line(e, lines) for e in errors)][:50]
        more = len(errors) - len(details)
        raise CliError(
            EXIT_USAGE,
            f"{path}: {len(errors)} error(s)" + (f" ({more} more not shown)" if more else ""),
            details,
        )
    return dict(value)


def _parse(path: str, text: str) -> tuple[Any, dict[str, int]]:
    if path.endswith(".json"):
        try:
            return json.loads(text), {}
        except json.JSONDecodeError as exc:
            raise CliError(
                EXIT_USAGE, f"{path}: not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
    yaml = require_yaml()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise CliError(
            EXIT_USAGE, f"{path}: not YAML or JSON: {getattr(exc, 'problem', exc)}{where}"
        ) from None
    lines: dict[str, int] = {}
    if node is not None:
        _lines(node, "", lines)
    return value, lines


def _lines(node: Any, path: str, lines: dict[str, int]) -> None:
    """Line of every path in a composed YAML node tree."""
    lines[path] = node.start_mark.line + 1
    if node.id == "mapping":
        for key, child in node.value:
            name = f"{path}.{key.value}" if path else str(key.value)
            lines[name] = key.start_mark.line + 1
            _lines(child, name, lines)
            lines[name] = key.start_mark.line + 1
    elif node.id == "sequence":
        for i, child in enumerate(node.value):
            _lines(child, f"{path}[{i}]", lines)


def _with_line(error: str, lines: dict[str, int]) -> tuple[int, str]:
    """(line, the error with its line) — the line of the nearest path that has one."""
    path = error.split(":", 1)[0]
    while path and path not in lines:  # a missing field: the line of its parent
        path = path.rpartition(".")[0] if "." in path else ""
    line = lines.get(path)
    return (line or 0, f"line {line}: {error}" if line else error)
