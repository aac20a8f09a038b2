"""``insights heatmap|slo|quota-usage|jobs``, ``audit bundle`` and ``tenants shares``
against the real stack (the routes the Console reads)."""

from __future__ import annotations

import json
import tarfile

import pytest

from tests.gateway._helpers import cli, make_dead_job, seed

pytestmark = pytest.mark.integration


def test_insights_family(stack, capsys) -> None:
    dead = seed(stack, lambda c: make_dead_job(c, stack))
    code, out, err = cli(stack, capsys, "insights", "heatmap", "--hours", "3", "-o", "json")
    assert code == 0, err
    heatmap = json.loads(out)
    assert len(heatmap["hours"]) == 3
    row = next(r for r in heatmap["rows"] if r["source_id"] == dead["source"]["id"])
    assert sum(row["failures"]) == 1
    code, out, _ = cli(stack, capsys, "insights", "heatmap", "--hours", "3")
    assert dead["source"]["name"] in out  # one row per source in the table
    code, out, _ = cli(stack, capsys, "insights", "slo")
    assert code == 0
    assert "BURN" in out
    code, out, _ = cli(stack, capsys, "insights", "quota-usage", "-o", "json")
    assert code == 0
    assert isinstance(json.loads(out)["items"], list)
    code, out, _ = cli(
        stack,
        capsys,
        "insights",
        "jobs",
        "--type",
        dead["job_type"],
        "--error-class",
        "schema_mismatch",
        "-o",
        "json",
    )
    assert code == 0
    assert [j["id"] for j in json.loads(out)["items"]] == [dead["job"]["id"]]
    code, out, _ = cli(stack, capsys, "tenants", "shares", "-o", "json")
    assert code == 0
    assert [t["id"] for t in json.loads(out)["items"]] == [stack.tenant]


def test_audit_bundle_is_saved_to_a_file(stack, capsys, tmp_path) -> None:
    dead = seed(stack, lambda c: make_dead_job(c, stack))
    target = tmp_path / "bundle.tar"
    args = ("audit", "bundle", "-f", str(target), "--source", dead["source"]["id"])
    code, out, err = cli(stack, capsys, *args, "-o", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["bytes"] == target.stat().st_size
    with tarfile.open(target) as tar:
        assert "manifest.json" in tar.getnames()
    code, _, err = cli(stack, capsys, *args)
    assert code == 2  # exists
    code, _, err = cli(stack, capsys, "audit", "bundle", "-f", str(tmp_path / "x.tar"))
    assert code == 2  # no scope: the gateway's 400
