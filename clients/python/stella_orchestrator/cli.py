"""The ``stella`` command: ``stella orchestrator <command> …`` and ``stella completion SHELL``.

Commands come from the ``stella_orchestrator.commands`` entry point group: each entry point
is a function ``register(subparsers)`` that adds its sub-commands and sets ``handler`` (a
function ``(args) -> int``) on each.

Exit codes (docs/cli.md): 0 ok; 1 the outcome is a failure (a watched run failed, a
conflict); 2 usage (bad arguments or file, a request the gateway refused as invalid);
3 not found; 4 not authenticated or not allowed; 5 the server failed or is unreachable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "stella_orchestrator.commands"
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
SHELLS = ("bash", "zsh")


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
            # The SDK installs without the CLI's libraries (httpx, rich, cryptography...):
            # those commands come with the [cli] extra; the other commands still work.
            print(
                f"stella: the {entry.name!r} commands need {exc.name!r}: "
                "pip install 'stella-orchestrator-sdk[cli]'",
                file=sys.stderr,
            )
            continue
        register(commands)
    completion = products.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh)",
        description="Print a completion script for SHELL. bash: "
        "`stella completion bash > ~/.local/share/bash-completion/completions/stella`; "
        'zsh: `stella completion zsh > "${fpath[1]}/_stella"`.',
    )
    completion.add_argument("shell", choices=SHELLS)
    completion.set_defaults(handler=lambda args: _completion(parser, args.shell))
    return parser


def _completion(parser: argparse.ArgumentParser, shell: str) -> int:
    # shtab writes a static script from the parser: a TAB never starts Python (argcomplete
    # would run `stella` on each one, importing every command family and the server stack).
    try:
        import shtab
    except ImportError:
        print("completion needs shtab: pip install 'stella-orchestrator-sdk[cli]'", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(shtab.complete(parser, shell=shell))
    return EXIT_OK


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
