"""``quotas``, ``schedules``, ``watermarks``, ``throttle circuits|blackouts|configure``,
``sources update|delete``, ``whoami``, ``overview`` and ``audit export`` against the real
stack; ``stella completion``. Events: test_cli_events.py."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from tests.gateway._helpers import cli, create_source, seed, unique

pytestmark = pytest.mark.integration


def test_quotas_family(stack, capsys) -> None:
    job_type = unique("jt")
    code, out, _ = cli(
        stack,
        capsys,
        "quotas",
        "create",
        "--type",
        job_type,
        "--max-active",
        "5",
        "--reason",
        "cap",
        "-o",
        "json",
    )
    assert code == 0, out
    quota = json.loads(out)
    assert quota["max_active"] == 5
    code, out, _ = cli(stack, capsys, "quotas", "list", "--type", job_type)
    assert quota["id"] in out
    assert "MAX ACTIVE" in out
    code, out, _ = cli(
        stack, capsys, "quotas", "update", quota["id"], "--max-per-hour", "100", "--reason", "r"
    )
    assert code == 0
    code, out, _ = cli(stack, capsys, "quotas", "show", quota["id"], "-o", "json")
    assert (json.loads(out)["max_active"], json.loads(out)["max_per_hour"]) == (5, 100)
    code, _, _ = cli(stack, capsys, "quotas", "delete", quota["id"], "--reason", "done")
    assert code == 0
    code, _, _ = cli(stack, capsys, "quotas", "show", quota["id"])
    assert code == 3


def test_schedules_family_takes_a_dag_file(stack, capsys, tmp_path) -> None:
    source = seed(stack, create_source)
    dag = tmp_path / "template.yaml"
    dag.write_text(
        f"name: nightly-{{fire_time}}\nsource_id: {source['id']}\n"
        "jobs:\n  - {key: a, job_type: t.fetch}\n  - {key: b, job_type: t.parse, depends_on: [a]}\n"
    )
    name = unique("sched")
    code, out, err = cli(
        stack,
        capsys,
        "schedules",
        "create",
        "--name",
        name,
        "--cron",
        "0 2 * * *",
        "-f",
        str(dag),
        "--catch-up",
        "one",
        "-o",
        "json",
    )
    assert code == 0, err
    schedule = json.loads(out)
    assert schedule["source_id"] == source["id"]
    assert [j["key"] for j in schedule["run_template"]["jobs"]] == ["a", "b"]
    assert schedule["next_fire_at"].endswith("02:00:00Z")
    code, out, _ = cli(stack, capsys, "schedules", "list", "--all")
    assert name in out
    code, out, _ = cli(stack, capsys, "schedules", "show", schedule["id"])
    assert "t.parse" in out
    code, out, _ = cli(
        stack, capsys, "schedules", "update", schedule["id"], "--enabled", "false", "-o", "json"
    )
    assert json.loads(out)["enabled"] is False
    code, _, _ = cli(stack, capsys, "schedules", "delete", schedule["id"], "--reason", "gone")
    assert code == 0


def test_limits_sources_and_identity(stack, capsys) -> None:
    source = seed(stack, create_source)
    code, out, _ = cli(stack, capsys, "whoami", "-o", "json")
    assert json.loads(out)["tenant"] == stack.tenant
    code, out, _ = cli(stack, capsys, "watermarks", "list", "--source", source["id"], "-o", "json")
    assert code == 0
    assert json.loads(out)["items"] == []
    code, out, _ = cli(stack, capsys, "throttle", "circuits", "-o", "json")
    assert code == 0
    code, out, _ = cli(stack, capsys, "throttle", "blackouts", "--source", source["id"])
    assert code == 0
    code, out, _ = cli(
        stack,
        capsys,
        "throttle",
        "configure",
        source["host"],
        "--capacity",
        "20",
        "--rate",
        "2",
        "--reason",
        "agreed with upstream",
        "-o",
        "json",
    )
    assert code == 0, out
    assert (json.loads(out)["capacity"], json.loads(out)["refill_per_second"]) == (20, 2)
    code, out, _ = cli(stack, capsys, "overview", "--window", "60", "-o", "json")
    assert code == 0
    assert isinstance(json.loads(out), dict)
    code, out, _ = cli(
        stack, capsys, "sources", "update", source["id"], "--enabled", "false", "-o", "json"
    )
    assert json.loads(out)["enabled"] is False
    code, _, _ = cli(stack, capsys, "sources", "delete", source["id"], "--reason", "retired")
    assert code == 0
    code, _, _ = cli(stack, capsys, "sources", "show", source["id"])
    assert code == 3


def test_audit_export_writes_every_entry(stack, capsys, tmp_path) -> None:
    source = seed(stack, create_source)
    cli(stack, capsys, "sources", "pause", source["id"], "--reason", "for the export")
    target = tmp_path / "audit.jsonl"
    code, out, err = cli(stack, capsys, "audit", "export", "-f", str(target), "-o", "json")
    assert code == 0, err
    result = json.loads(out)
    lines = target.read_bytes().splitlines(keepends=True)
    assert result["entries"] == len(lines) > 0
    assert result["sha256"] == hashlib.sha256(b"".join(lines)).hexdigest()
    entries = [json.loads(line) for line in lines]
    assert any(e["target"] == f"sources/{source['id']}" for e in entries)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    code, _, err = cli(stack, capsys, "audit", "export", "-f", str(target))
    assert code == 2  # exists: --force overwrites
    assert "--force" in err


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_know_the_commands(shell, tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stella_orchestrator", "completion", shell],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    script = done.stdout
    for word in ("orchestrator", "schedules", "watermarks", "prioritize", "--follow"):
        assert word in script, word
    if shell == "bash":
        path = tmp_path / "stella.bash"
        path.write_text(script)
        subprocess.run(["bash", "-n", str(path)], check=True, timeout=60)  # it parses
