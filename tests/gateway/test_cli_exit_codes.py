"""The CLI's documented exit codes (docs/cli.md), one test per class, against the real stack:
2 usage, 3 not found, 4 auth, 5 server error, 1 failed outcome."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from stella_orchestrator.cli import main
from tests.gateway._helpers import cli, create_source, make_dead_job, seed

pytestmark = pytest.mark.integration

MISSING_ID = "0190a5a0-0000-7000-8000-000000000000"


@contextlib.contextmanager
def _replica(stack, **overrides: object) -> Iterator[str]:
    """Another gateway in front of the stack's services (settings overridden), served by its
    own event loop in a thread; yields its base URL."""
    import uvicorn

    from orchestrator_gateway import create_app

    config = uvicorn.Config(
        create_app(stack.gateway_settings(**overrides)),
        host="127.0.0.1",
        port=0,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway-replica", daemon=True)
    thread.start()
    try:
        for _ in range(3000):  # up to 60 s on a loaded machine
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.02)
        assert server.started, "the replica did not start"
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


def test_usage_errors_exit_2(stack, capsys, tmp_path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["orchestrator", "sources", "pause", "x"])  # --reason missing
    assert exc.value.code == 2
    code, _, err = cli(stack, capsys, "jobs", "show", "not-an-id")  # the gateway's 400
    assert code == 2
    assert "job_id" in err
    bad = tmp_path / "dag.yaml"
    bad.write_text("jobs:\n  - key: a\n    job_type: t\n    depends_on: [b]\n")
    code, _, err = cli(stack, capsys, "runs", "create", "-f", str(bad))
    assert code == 2
    assert "line 4: jobs[0].depends_on[0]: no job has key 'b'" in err


def test_not_found_exits_3(stack, capsys) -> None:
    code, _, err = cli(stack, capsys, "jobs", "show", MISSING_ID)
    assert code == 3
    assert "404" in err
    code, _, _ = cli(stack, capsys, "runs", "cancel", MISSING_ID, "--reason", "r")
    assert code == 3


def test_auth_errors_exit_4(stack, capsys) -> None:
    code, _, err = cli(stack, capsys, "sources", "list", token="garbage")
    assert code == 4
    assert "401" in err
    source = seed(stack, create_source)
    code, _, err = cli(
        stack, capsys, "sources", "pause", source["id"], "--reason", "r", scopes=("orch:read",)
    )
    assert code == 4
    assert "orch:operate" in err  # the message names the missing scope


def test_server_errors_exit_5(stack, capsys) -> None:
    with _replica(stack, audit_target="127.0.0.1:1") as url:  # nothing listens there
        capsys.readouterr()
        code = main(["orchestrator", "audit", "list", "--api-url", url, "--token", stack.token()])
        err = capsys.readouterr().err
    assert code == 5
    assert "503" in err
    code = main(
        ["orchestrator", "whoami", "--api-url", "http://127.0.0.1:1", "--token", stack.token()]
    )
    assert code == 5
    assert "cannot reach the gateway" in capsys.readouterr().err


def test_a_failed_outcome_exits_1(stack, capsys) -> None:
    dead = seed(stack, lambda c: make_dead_job(c, stack))
    code, out, _ = cli(stack, capsys, "jobs", "watch", dead["job"]["id"], "-o", "json")
    assert code == 1  # terminal, but dead
    assert '"state": "dead"' in out
