"""``stella orchestrator sources|runs|jobs|throttle|deadletter|audit`` against a running
gateway (real HTTP, real services): output formats, paging and env vars (exit codes:
test_cli_exit_codes.py)."""

from __future__ import annotations

import json

import pytest

from stella_orchestrator.cli import main
from tests.gateway._helpers import (
    CLI_SCOPES,
    cli,
    create_run,
    create_source,
    make_dead_job,
    seed,
    unique,
)

pytestmark = pytest.mark.integration

ALL = CLI_SCOPES


def test_sources_family(stack, capsys) -> None:
    name = unique("cli")
    code, out, _ = cli(
        stack,
        capsys,
        "sources",
        "create",
        "--name",
        name,
        "--type",
        "osv",
        "--host",
        "osv.example.org",
        "-o",
        "json",
    )
    assert code == 0
    source = json.loads(out)
    assert source["name"] == name

    code, out, _ = cli(stack, capsys, "sources", "list", "--all")
    assert code == 0
    assert name in out
    assert "PAUSED" in out  # a table header

    code, out, _ = cli(
        stack,
        capsys,
        "sources",
        "pause",
        source["id"],
        "--reason",
        "upstream broken",
        "--ticket",
        "OPS-7",
        "-o",
        "json",
    )
    assert code == 0
    assert json.loads(out)["paused"] is True
    assert json.loads(out)["paused_ticket"] == "OPS-7"
    code, out, _ = cli(stack, capsys, "sources", "resume", source["id"], "--reason", "fixed")
    assert code == 0
    assert "paused" in out

    code, out, _ = cli(stack, capsys, "sources", "show", source["id"], "-o", "json")
    assert json.loads(out)["paused"] is False


def test_paging_with_page_size_and_token(stack, capsys) -> None:
    for _ in range(3):
        seed(stack, create_source)
    code, out, _ = cli(stack, capsys, "sources", "list", "--page-size", "2", "-o", "json")
    assert code == 0
    first = json.loads(out)
    assert len(first["items"]) == 2
    assert first["next_page_token"]
    code, out, _ = cli(
        stack,
        capsys,
        "sources",
        "list",
        "--page-size",
        "2",
        "--page-token",
        first["next_page_token"],
        "-o",
        "json",
    )
    second = json.loads(out)
    assert {s["id"] for s in first["items"]}.isdisjoint(s["id"] for s in second["items"])
    assert second["items"][0]["id"] > first["items"][-1]["id"]


def test_runs_family(stack, capsys) -> None:
    job_type = unique("jt")

    async def make(c):
        source = await create_source(c)
        return await create_run(c, source["id"], job_type)

    run = seed(stack, make)["run"]
    code, out, _ = cli(stack, capsys, "runs", "list", "--state", "pending", "-o", "json", "--all")
    assert code == 0
    assert run["id"] in [r["id"] for r in json.loads(out)["items"]]
    code, out, _ = cli(stack, capsys, "runs", "show", run["id"])
    assert code == 0
    assert "DAG" in out
    assert "j0" in out
    code, out, _ = cli(stack, capsys, "runs", "cancel", run["id"], "--reason", "not needed")
    assert code == 0
    assert "3 job(s) canceled" in out
    code, out, _err = cli(stack, capsys, "runs", "watch", run["id"], "-o", "json")
    assert code == 1  # terminal, but not succeeded
    assert json.loads(out)["state"] == "canceled"


def test_jobs_family(stack, capsys) -> None:
    dead = seed(stack, lambda c: make_dead_job(c, stack))
    job_id = dead["job"]["id"]
    code, out, _ = cli(stack, capsys, "jobs", "list", "--state", "dead", "--type", dead["job_type"])
    assert code == 0
    assert job_id in out
    code, out, _ = cli(stack, capsys, "jobs", "show", job_id, "-o", "json")
    assert [e["type"] for e in json.loads(out)["history"]] == [
        "job.created",
        "job.leased",
        "job.dead",
    ]
    code, out, _ = cli(stack, capsys, "jobs", "retry", job_id, "--reason", "fixed upstream")
    assert code == 0
    assert "ready" in out
    code, out, _ = cli(stack, capsys, "jobs", "cancel", job_id, "--reason", "give up", "-o", "json")
    assert json.loads(out)["state"] == "canceled"


def test_deadletter_family_with_bulk_replay(stack, capsys) -> None:
    dead = seed(stack, lambda c: make_dead_job(c, stack))
    code, out, _ = cli(
        stack, capsys, "deadletter", "list", "--job-type", dead["job_type"], "-o", "json"
    )
    (entry,) = json.loads(out)["items"]
    code, out, _ = cli(stack, capsys, "deadletter", "show", entry["id"])
    assert code == 0
    assert "schema_mismatch" in out
    code, out, _ = cli(stack, capsys, "deadletter", "stats")
    assert code == 0
    assert dead["job_type"] in out
    code, out, _ = cli(
        stack,
        capsys,
        "deadletter",
        "replay",
        "--job-type",
        dead["job_type"],
        "--reason",
        "bulk",
        "-o",
        "json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["replayed"] == [entry["id"]]
    code, out, _ = cli(stack, capsys, "deadletter", "replay", entry["id"], "--reason", "again")
    assert code == 1  # already replayed: a conflict, not "not found"


def test_throttle_family_and_denied_without_scope(stack, capsys) -> None:
    source = seed(stack, create_source)
    code, out, err = cli(
        stack,
        capsys,
        "throttle",
        "set",
        source["id"],
        "--rate",
        "0.5",
        "--duration",
        "60",
        "--reason",
        "upstream asked",
        scopes=("orch:read", "orch:operate"),
    )
    assert code == 4, err  # needs orch:quota
    assert "orch:quota" in err
    code, out, _ = cli(
        stack,
        capsys,
        "throttle",
        "set",
        source["id"],
        "--rate",
        "0.5",
        "--duration",
        "60",
        "--reason",
        "upstream asked",
        "-o",
        "json",
    )
    assert code == 0
    assert json.loads(out)["bucket"]["effective_refill_per_second"] == 0.5
    code, out, _ = cli(stack, capsys, "throttle", "list", "-o", "json", "--all")
    assert source["host"] in [b["key"]["host"] for b in json.loads(out)["items"]]
    code, out, _ = cli(stack, capsys, "throttle", "clear", source["id"], "--reason", "ok")
    assert code == 0


def test_audit_family_lists_entries(stack, capsys) -> None:
    code, out, err = cli(stack, capsys, "audit", "list", "--output", "json")
    assert code == 0, err
    assert isinstance(json.loads(out)["items"], list)


def test_environment_variables(stack, capsys, monkeypatch) -> None:
    monkeypatch.setenv("STELLA_ORCH_API_URL", stack.base_url)
    monkeypatch.setenv("STELLA_ORCH_TOKEN", stack.token(ALL))
    monkeypatch.setenv("STELLA_ORCH_OUTPUT", "json")
    capsys.readouterr()
    assert main(["orchestrator", "sources", "list", "--page-size", "1"]) == 0
    assert "items" in json.loads(capsys.readouterr().out)
    monkeypatch.delenv("STELLA_ORCH_TOKEN")
    assert main(["orchestrator", "sources", "list"]) == 2


def test_backfill_family(stack, capsys) -> None:
    source = seed(stack, create_source)
    args = (
        "backfill",
        "create",
        "--source",
        source["id"],
        "--job-type",
        unique("bf"),
        "--start",
        "2026-02-01T00:00:00Z",
        "--end",
        "2026-02-01T04:00:00Z",
        "--window",
        "3600",
        "--reason",
        "gap in feed",
        "--ticket",
        "OPS-9",
    )
    code, _, err = cli(stack, capsys, *args, scopes=("orch:read", "orch:operate"))
    assert code == 4, err  # orch:backfill missing
    scopes = ("orch:read", "orch:backfill")
    code, out, _ = cli(stack, capsys, *args, "--dry-run", scopes=scopes)
    assert code == 0
    assert "window_count" in out
    code, out, _ = cli(stack, capsys, *args, "-o", "json", scopes=scopes)
    assert code == 0
    backfill = json.loads(out)["backfill"]
    assert backfill["window_count"] == 4
    code, out, _ = cli(stack, capsys, "backfill", "list", "--source", source["id"])
    assert code == 0
    assert backfill["id"] in out
    code, out, _ = cli(stack, capsys, "backfill", "show", backfill["id"], "-o", "json")
    assert json.loads(out)["ticket"] == "OPS-9"
    code, out, err = cli(
        stack,
        capsys,
        "backfill",
        "cancel",
        backfill["id"],
        "--reason",
        "not needed",
        "--ticket",
        "OPS-9",
        scopes=scopes,
    )
    assert code == 0, err
    assert "canceled" in out
    code, out, _ = cli(stack, capsys, "backfill", "watch", backfill["id"], "-o", "json")
    assert code == 1  # terminal but not succeeded
    assert json.loads(out)["state"] == "canceled"
