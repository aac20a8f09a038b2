"""``runs create -f`` (YAML and JSON, validated), ``runs prioritize``, ``jobs submit|watch|
history|artifacts|prioritize|replay|pause|resume`` and ``-o yaml``, against the real stack."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.gateway._helpers import claim, cli, complete, create_source, seed, unique

pytestmark = pytest.mark.integration


def _dag(source_id: str, job_type: str) -> str:
    return f"""\
name: {unique("cli-dag")}
source_id: {source_id}
labels: {{team: ingest}}
jobs:
  - key: fetch
    job_type: {job_type}
    payload: {{window: "2026-05-03T00:00:00Z"}}
    max_attempts: 2
  - key: parse
    job_type: {job_type}
    depends_on: [fetch]
  - key: publish
    job_type: {job_type}
    depends_on: [parse]
"""


def test_runs_create_from_yaml_with_idempotency_and_prioritize(stack, capsys, tmp_path) -> None:
    source = seed(stack, create_source)
    dag = tmp_path / "dag.yaml"
    dag.write_text(_dag(source["id"], unique("jt")))
    code, _, err = cli(stack, capsys, "runs", "create", "-f", str(dag), "--validate-only")
    assert code == 0
    assert "valid (3 jobs); nothing sent" in err

    key = unique("idem")
    args = ("runs", "create", "-f", str(dag), "--idempotency-key", key, "-o", "json")
    code, out, _ = cli(stack, capsys, *args)
    assert code == 0, out
    created = json.loads(out)
    assert [j["key"] for j in created["jobs"]] == ["fetch", "parse", "publish"]
    assert created["run"]["labels"] == {"team": "ingest"}
    code, out, _ = cli(stack, capsys, *args)
    assert json.loads(out)["run"]["id"] == created["run"]["id"]  # the same run, not a second

    run_id = created["run"]["id"]
    code, out, _ = cli(stack, capsys, "runs", "show", run_id)
    assert "publish" in out
    assert "parse" in out.split("publish")[1]  # publish runs after parse
    code, out, _ = cli(
        stack, capsys, "runs", "prioritize", run_id, "--priority", "50", "--reason", "urgent"
    )
    assert code == 0
    assert "3 waiting job(s) now 50" in out
    code, out, _ = cli(stack, capsys, "jobs", "list", "--run", run_id, "-o", "yaml")
    assert {j["priority"] for j in yaml.safe_load(out)["items"]} == {50}


def test_runs_create_lists_every_error_with_its_path(stack, capsys, tmp_path) -> None:
    bad = tmp_path / "dag.json"
    bad.write_text(
        json.dumps(
            {
                "name": "x",
                "colour": "red",
                "jobs": [
                    {"key": "a", "job_type": "t", "priority": 5000},
                    {"key": "a", "job_type": ""},
                    {"key": "c", "depends_on": ["zz"], "max_attempts": "3"},
                ],
            }
        )
    )
    code, _, err = cli(stack, capsys, "runs", "create", "-f", str(bad))
    assert code == 2
    for expected in (
        "colour: unknown field",
        "jobs[0].priority: 5000 is not in [-1000, 1000]",
        "jobs[1].job_type: must not be empty",
        "jobs[2].job_type: required",
        "jobs[2].max_attempts: expected an integer, got '3'",
    ):
        assert expected in err, err
    cycle = tmp_path / "cycle.yaml"
    cycle.write_text(
        "jobs:\n"
        "  - {key: a, job_type: t, depends_on: [c]}\n"
        "  - {key: b, job_type: t, depends_on: [a]}\n"
        "  - {key: c, job_type: t, depends_on: [b]}\n"
    )
    code, _, err = cli(stack, capsys, "runs", "create", "-f", str(cycle))
    assert code == 2
    assert "a cycle: a -> c -> b -> a" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("jobs:\n  - key: a\n   job_type: t\n")
    code, _, err = cli(stack, capsys, "runs", "create", "-f", str(broken))
    assert code == 2
    assert "not YAML or JSON" in err
    assert "line 3" in err


def test_jobs_submit_prioritize_history_and_pause(stack, capsys) -> None:
    source = seed(stack, create_source)
    job_type = unique("jt")
    submit = (
        "jobs",
        "submit",
        "--type",
        job_type,
        "--source",
        source["id"],
        "--payload",
        '{"cve": "CVE-2026-1"}',
        "--label",
        "team=ingest",
        "--idempotency-key",
        unique("k"),
        "-o",
        "json",
    )
    code, out, _ = cli(stack, capsys, *submit)
    assert code == 0
    job = json.loads(out)["job"]
    assert job["payload"] == {"cve": "CVE-2026-1"}
    code, out, _ = cli(stack, capsys, *submit)
    assert json.loads(out)["job"]["id"] == job["id"]  # the first job, not a second

    code, out, _ = cli(
        stack, capsys, "jobs", "prioritize", job["id"], "--priority", "7", "--reason", "r"
    )
    assert code == 0
    assert "7" in out
    code, out, _ = cli(stack, capsys, "jobs", "history", job["id"], "-o", "json")
    assert json.loads(out)["items"][0]["type"] == "job.created"
    code, out, _ = cli(stack, capsys, "jobs", "artifacts", job["id"], "-o", "json")
    assert json.loads(out)["items"] == []

    code, out, _ = cli(stack, capsys, "jobs", "pause", "--type", job_type, "--reason", "upstream")
    assert code == 0
    assert f"paused: job type {job_type}" in out
    code, out, _ = cli(stack, capsys, "quotas", "list", "--type", job_type, "-o", "json")
    assert [q["paused"] for q in json.loads(out)["items"]] == [True]
    code, out, _ = cli(stack, capsys, "jobs", "resume", "--type", job_type, "--reason", "fixed")
    assert code == 0
    code, out, _ = cli(stack, capsys, "quotas", "list", "--type", job_type, "-o", "json")
    assert [q["paused"] for q in json.loads(out)["items"]] == [False]

    code, _, err = cli(stack, capsys, "jobs", "submit", "--type", job_type, "--priority", "9999")
    assert code == 2
    assert "job.priority: 9999 is not in [-1000, 1000]" in err


def _succeeded_job(stack) -> dict:
    """A standalone job a worker completed."""

    async def make(c):
        job_type = unique("jt")
        source = await create_source(c)
        body = {"job": {"job_type": job_type, "source_id": source["id"]}}
        resp = await c.post("/jobs", json=body)
        assert resp.status_code == 201, resp.text
        (assignment,) = await claim(stack, job_type)
        await complete(stack, job_type, assignment)
        return resp.json()["job"]

    return seed(stack, make)


def test_jobs_watch_and_replay(stack, capsys) -> None:
    job = _succeeded_job(stack)
    code, out, _ = cli(stack, capsys, "jobs", "watch", job["id"], "-o", "json")
    assert code == 0
    assert json.loads(out)["state"] == "succeeded"
    code, out, err = cli(
        stack, capsys, "jobs", "replay", job["id"], "--reason", "again", "-o", "json"
    )
    assert code == 0, err
    replay = json.loads(out)
    assert replay["replay_of"] == job["id"]
    assert replay["id"] != job["id"]
    code, _, _ = cli(stack, capsys, "jobs", "cancel", replay["id"], "--reason", "not needed")
    assert code == 0
    code, out, _ = cli(stack, capsys, "jobs", "watch", replay["id"], "-o", "yaml")
    assert code == 1  # terminal, but canceled
    assert yaml.safe_load(out)["state"] == "canceled"
