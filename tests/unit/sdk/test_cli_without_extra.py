"""The SDK installs without its [cli] extra (httpx, rich): the ``stella`` command still
starts, says how to get the REST commands, and keeps the others."""

from __future__ import annotations

import sys

import pytest

from stella_orchestrator.cli import build_parser


def test_the_cli_starts_without_httpx_and_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(sys.modules):
        # Every CLI module that may hold httpx already (another test imported them first).
        if (
            name.startswith(
                (
                    "stella_orchestrator._rest",
                    "stella_orchestrator._cli",
                    "stella_orchestrator._kit",
                )
            )
            or name.split(".")[0] == "httpx"
        ):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "httpx", None)  # import httpx → ModuleNotFoundError
    parser = build_parser()
    assert "pip install 'stella-orchestrator-sdk[cli]'" in capsys.readouterr().err
    args = parser.parse_args(["orchestrator", "token", "mint", "--tenant", "acme"])
    assert args.handler is not None
    with pytest.raises(SystemExit):
        parser.parse_args(["orchestrator", "jobs", "list"])  # a REST command: not there
