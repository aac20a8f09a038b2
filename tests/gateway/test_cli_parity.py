"""The CLI at parity with the REST API: the gateway's OpenAPI document and the ``stella``
parser, walked side by side. Every operation has a command; every command names operations
that exist; a command for an operation that needs an operator reason requires ``--reason``;
every REST command takes ``-o table|json|yaml``; docs/cli.md lists the same mapping; the
DAG file schema of ``runs create -f`` is the body schema of ``POST /runs``.

Each command declares what it calls (``Commands.leaf(..., ops=[...])``), so the mapping is
written once, next to the code that makes the call, and checked here both ways.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest

from stella_orchestrator._cli_dagfile import JOB_SCHEMA, RUN_SCHEMA
from stella_orchestrator.cli import build_parser
from tests.conftest import DEV_SECRET

API_PREFIX = "/api/v1/orchestrator"
METHODS = ("get", "post", "put", "patch", "delete")
REASON_HEADER = "X-Stella-Operator-Reason"
CLI_DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    """The OpenAPI document of the gateway application (built, not served: no I/O)."""
    from orchestrator_gateway import GatewaySettings, create_app

    settings = GatewaySettings(
        http_port=0,
        auth_hs256_secret=DEV_SECRET,
        database_url="postgresql://unused@127.0.0.1:1/unused",
        redis_url="redis://127.0.0.1:1/0",
    )
    return create_app(settings).openapi()


def _operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``"METHOD /path"`` (under the API prefix) → the operation object."""
    ops = {}
    for path, item in doc["paths"].items():
        if not path.startswith(API_PREFIX):
            continue
        for method in METHODS:
            if method in item:
                ops[f"{method.upper()} {path[len(API_PREFIX) :]}"] = item[method]
    return ops


def _leaves(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    """(command words, parser) of every command that runs something."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield words, parser
        return
    for name, child in subs[0].choices.items():
        yield from _leaves(child, (*words, name))


def _rest_commands() -> dict[str, argparse.ArgumentParser]:
    """``"orchestrator runs create"`` → parser, for every command that talks to the gateway
    (it has ``--api-url``)."""
    return {
        " ".join(words): parser
        for words, parser in _leaves(build_parser())
        if any("--api-url" in a.option_strings for a in parser._actions)
    }


def _claims() -> dict[str, list[str]]:
    """REST operation → the commands that claim it."""
    claims: dict[str, list[str]] = {}
    for command, parser in _rest_commands().items():
        for op in parser._defaults.get("rest_ops", ()):
            claims.setdefault(op, []).append(command)
    return claims


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_every_rest_operation_has_a_cli_command(openapi) -> None:
    missing = sorted(set(_operations(openapi)) - set(_claims()))
    assert missing == [], "REST operations without a CLI command:\n  " + "\n  ".join(missing)


def test_every_claimed_operation_exists(openapi) -> None:
    stale = {op: cmds for op, cmds in _claims().items() if op not in _operations(openapi)}
    assert stale == {}, f"commands claim operations the API does not have: {stale}"


def test_every_rest_command_claims_an_operation_and_takes_every_output_format() -> None:
    commands = _rest_commands()
    assert len(commands) > 60  # the walk found the families, not an empty parser
    silent = [c for c, p in commands.items() if not p._defaults.get("rest_ops")]
    assert silent == [], f"REST commands that name no operation: {silent}"
    for command, parser in commands.items():
        output = _option(parser, "-o")
        assert output is not None, command
        assert set(output.choices or ()) == {"table", "json", "yaml"}, command


def test_a_command_requires_a_reason_where_its_operation_does(openapi) -> None:
    ops = _operations(openapi)
    commands = _rest_commands()
    wrong = []
    for op, names in _claims().items():
        needs = any(
            p["name"] == REASON_HEADER and p.get("required") for p in ops[op].get("parameters", [])
        )
        for name in names:
            reason = _option(commands[name], "--reason")
            # A command may serve a read and a control (deadletter replay): the control decides.
            if needs and not (reason is not None and reason.required):
                wrong.append(f"{name} ({op})")
    assert wrong == [], f"commands that must require --reason: {wrong}"


def test_docs_list_the_same_mapping() -> None:
    """docs/cli.md has a row per (operation, command) pair: the reference is not stale."""
    rows = set(
        re.findall(r"^\| `([A-Z]+ /[^`]*)` \| `stella ([^`]+)` \|", CLI_DOC.read_text(), re.M)
    )
    actual = {(op, cmd) for op, cmds in _claims().items() for cmd in cmds}
    assert sorted(actual - rows) == [], "missing from docs/cli.md"
    assert sorted(rows - actual) == [], "in docs/cli.md but not in the CLI"


def _plain(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI schema with $refs resolved and documentation keys dropped."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("title", "default", "description"):
            continue
        if key == "properties":
            value = {k: _plain(v, components) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            value = _plain(value, components)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        out[key] = value
    return out


@pytest.mark.parametrize(
    ("component", "schema"), [("RunCreate", RUN_SCHEMA), ("JobSpecIn", JOB_SCHEMA)]
)
def test_dag_file_schema_is_the_request_body_schema(openapi, component, schema) -> None:
    components = openapi["components"]["schemas"]
    expected = _plain(components[component], components)
    if "jobs" in schema["properties"]:  # the jobs' schema is compared on its own
        expected["properties"]["jobs"].pop("items")
        schema = {**schema, "properties": {**schema["properties"]}}
        schema["properties"]["jobs"] = {
            k: v for k, v in schema["properties"]["jobs"].items() if k != "items"
        }
    assert _plain(schema, components) == expected
