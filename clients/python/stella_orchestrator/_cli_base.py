"""What every REST command shares: the connection options, ``-o``, paging and the operator
reason; the one place a command becomes an exit code; lists and progress bars.

Each command is declared by :meth:`Commands.leaf` with the REST operations it calls
(``ops=("GET /runs/{run_id}",)``): ``tests/gateway/test_cli_parity.py`` walks the parser and
the gateway's OpenAPI document and names every operation without a command, and every
command that claims an operation the API does not have.

Exit codes (docs/cli.md): 0 ok; 1 the command ran and the outcome is a failure (a watched run
failed, a conflict, part of a bulk action failed); 2 usage (bad arguments, a file that does
not validate, a request the gateway refused as invalid: 400, 422); 3 not found (404);
4 not authenticated or not allowed (401, 403); 5 the server failed or is unreachable (5xx,
429 after the client gave up, no connection).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypedDict

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from stella_orchestrator._cli_output import (
    EXIT_AUTH,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_SERVER,
    EXIT_USAGE,
    CliError,
    Columns,
    Output,
)
from stella_orchestrator._rest import RestClient, RestError

DEFAULT_API_URL = "http://127.0.0.1:8080"
RUN_TERMINAL = frozenset({"succeeded", "failed", "canceled"})
JOB_TERMINAL = frozenset({"succeeded", "dead", "canceled"})

Handler = Callable[[argparse.Namespace, RestClient, Output], int]


def exit_code_for(status: int) -> int:
    """The exit code of a failed REST call with this HTTP status (0: no answer)."""
    if status in (400, 422):
        return EXIT_USAGE
    if status == 404:
        return EXIT_NOT_FOUND
    if status in (401, 403):
        return EXIT_AUTH
    if status == 0 or status >= 500 or status == 429:
        return EXIT_SERVER
    return EXIT_FAILED


def _connection() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    env = os.environ.get
    group.add_argument(
        "--api-url",
        default=env("STELLA_ORCH_API_URL", DEFAULT_API_URL),
        help="gateway URL (env STELLA_ORCH_API_URL; default %(default)s)",
    )
    group.add_argument(
        "--token", default=env("STELLA_ORCH_TOKEN", ""), help="bearer token (env STELLA_ORCH_TOKEN)"
    )
    group.add_argument(
        "--tenant",
        default=env("STELLA_ORCH_TENANT", ""),
        help="tenant, when the token names several (env STELLA_ORCH_TENANT)",
    )
    group.add_argument(
        "--output",
        "-o",
        choices=("table", "json", "yaml"),
        default=env("STELLA_ORCH_OUTPUT", "table"),
        help="output format (env STELLA_ORCH_OUTPUT; default %(default)s)",
    )
    return common


def _paging() -> argparse.ArgumentParser:
    paging = argparse.ArgumentParser(add_help=False)
    paging.add_argument("--page-size", type=int, default=50, help="items per page (1-500)")
    paging.add_argument("--page-token", default="", help="next_page_token of the last page")
    paging.add_argument("--all", action="store_true", help="follow every page")
    return paging


def _control(required: bool) -> argparse.ArgumentParser:
    control = argparse.ArgumentParser(add_help=False)
    control.add_argument(
        "--reason", required=required, default="", help="why (audited; at most 256 chars)"
    )
    control.add_argument("--ticket", default="", help="change or incident ticket")
    return control


class Commands:
    """Builds command groups and their leaves with the shared options."""

    def __init__(self, commands: Any) -> None:
        self.commands = commands
        self.common = _connection()
        self.paging = _paging()
        self.control = _control(required=True)
        self.why = _control(required=False)

    def group(self, name: str, help_: str) -> Any:
        """``stella orchestrator NAME`` with sub-commands (joins an existing group)."""
        parser = self.commands.choices.get(name) or self.commands.add_parser(
            name, help=help_, description=help_
        )
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action
        return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")

    def leaf(
        self,
        sub: Any,
        name: str,
        handler: Handler,
        help_: str,
        *parents: argparse.ArgumentParser,
        ops: Sequence[str],
        item: str = "",
    ) -> argparse.ArgumentParser:
        """One command; ``ops`` are the REST operations it calls (``"METHOD /path"``).
        ``item`` (a path parameter such as ``run_id``) adds the positional ``id`` it fills."""
        parser: argparse.ArgumentParser = sub.add_parser(
            name, help=help_, description=help_, parents=[self.common, *parents]
        )
        parser.set_defaults(handler=_run(handler), rest_ops=tuple(ops))
        if item:
            parser.add_argument("id", metavar=item.upper(), help=item.replace("_", " "))
        return parser


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        out = Output(args.output)
        try:
            if not args.token:
                raise CliError(EXIT_USAGE, "no token: pass --token or set STELLA_ORCH_TOKEN")
            with RestClient(args.api_url, args.token, args.tenant or None) as client:
                return handler(args, client, out)
        except CliError as exc:
            out.error(str(exc), exc.details)
            return exc.code
        except RestError as exc:
            details = [
                f"{err.get('field')}: {err.get('description')}"
                for err in exc.problem.get("errors") or []
            ]
            out.error(str(exc), details)
            return exit_code_for(exc.status)

    return run


def list_items(
    args: argparse.Namespace,
    client: RestClient,
    out: Output,
    path: str,
    columns: Columns,
    *,
    items: str = "items",
    **params: Any,
) -> int:
    """A list command: one page (``--page-size``/``--page-token``) or every page (``--all``)."""
    rows: list[dict[str, Any]] = []
    next_token = ""
    for page in client.pages(
        path, follow=args.all, page_size=args.page_size, page_token=args.page_token, **params
    ):
        rows += page[items]
        next_token = page.get("next_page_token", "")
    next_token = "" if args.all else next_token
    out.show({items: rows, "next_page_token": next_token}, columns=columns, items=items)
    if next_token and out.mode == "table":
        out.note(f"more: --page-token {next_token}  (or --all)")
    return EXIT_OK


def progress_bar(out: Output, *, spinner: bool = False) -> Progress:
    """A progress bar on stderr (it never mixes with ``-o json|yaml`` on stdout)."""
    first = SpinnerColumn() if spinner else TextColumn("")
    return Progress(
        first,
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out.err,
        transient=out.mode != "table",
    )


def watch(
    out: Output,
    fetch: Callable[[], dict[str, Any]],
    step: Callable[[dict[str, Any]], tuple[str, int | None, int, bool]],
    *,
    interval_s: float,
    timeout_s: float,
) -> dict[str, Any]:
    """Polls ``fetch`` with a progress bar until ``step`` says it is done; returns the last
    value. ``step`` gives (description, total or None, completed, done).

    Raises:
        CliError: Not done within ``timeout_s`` (exit 1).
    """
    deadline = time.monotonic() + timeout_s
    with progress_bar(out, spinner=True) as progress:
        task = progress.add_task("", total=None)
        while True:
            value = fetch()
            description, total, completed, done = step(value)
            progress.update(task, description=description, total=total, completed=completed)
            if done:
                return value
            if time.monotonic() > deadline:
                raise CliError(EXIT_FAILED, f"timeout: still {description}")
            time.sleep(interval_s)


def add_watch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after (s)")


def parse_labels(pairs: Iterable[str]) -> dict[str, str]:
    """``--label k=v`` repeated, as a dict.

    Raises:
        CliError: A pair has no ``=`` (exit 2).
    """
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(EXIT_USAGE, f"--label {pair!r}: expected KEY=VALUE")
        labels[key] = value
    return labels


class OperatorWords(TypedDict):
    """The ``reason`` and ``ticket`` keywords of :meth:`RestClient.request`."""

    reason: str
    ticket: str


def control(args: argparse.Namespace) -> OperatorWords:
    """The operator reason and ticket of a control command, as request keywords."""
    return {"reason": args.reason, "ticket": args.ticket}


def show_one(collection: str) -> Handler:
    """The handler of ``<family> show ID``: ``GET /<collection>/ID``, every field."""

    def show(args: argparse.Namespace, client: RestClient, out: Output) -> int:
        out.show(client.get(f"/{collection}/{args.id}"))
        return EXIT_OK

    return show


def delete_one(collection: str) -> Handler:
    """The handler of ``<family> delete ID --reason …``: ``DELETE /<collection>/ID``."""

    def delete(args: argparse.Namespace, client: RestClient, out: Output) -> int:
        client.request("DELETE", f"/{collection}/{args.id}", **control(args))
        out.show({"deleted": args.id}, summary=lambda _: f"deleted {args.id}")
        return EXIT_OK

    return delete


def list_of(path: str, columns: Columns, **filters: str) -> Handler:
    """The handler of a list command: ``GET path`` (``{id}`` is the positional id), each
    query parameter (keyword) taken from the argument named by its value."""

    def handler(args: argparse.Namespace, client: RestClient, out: Output) -> int:
        params = {param: getattr(args, attr) for param, attr in filters.items()}
        url = path.format(id=getattr(args, "id", ""))
        return list_items(args, client, out, url, columns, **params)

    return handler
