"""The ``stella`` command: ``stella orchestrator <command> …``.

Commands come from the ``stella_orchestrator.commands`` entry point group: each entry point
is a function ``register(subparsers)`` that adds its sub-commands and sets ``handler`` (a
function ``(args) -> int``) on each. Exit codes: 0 ok, 1 error, 2 usage, 3 not found/denied.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "stella_orchestrator.commands"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stella", description="Stella Ops command line.")
    products = parser.add_subparsers(dest="product", required=True, metavar="PRODUCT")
    orch = products.add_parser(
        "orchestrator", help="Source & Job Orchestrator", description="Source & Job Orchestrator."
    )
    commands = orch.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            register = entry.load()
        except ModuleNotFoundError as exc:
            # The SDK installs without the CLI's libraries (httpx, rich): its REST commands
            # come with the [cli] extra; the other commands still work.
            print(
                f"stella: the {entry.name!r} commands need {exc.name!r}: "
                "pip install 'stella-orchestrator-sdk[cli]'",
                file=sys.stderr,
            )
            continue
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        return EXIT_USAGE
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
