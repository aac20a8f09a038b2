"""Resuming a failed run through REST (``POST /runs/{id}/resume``) and the CLI
(``stella orchestrator runs resume RUN --reason ...``) against the running stack: the chain
j0 -> j1 -> j2 fails at j0 (j1, j2 canceled as upstream_failed), is resumed, and ends
succeeded; a run that is not failed is refused. The Console's Resume run button too."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.gateway._helpers import (
    CLI_SCOPES,
    REASON,
    claim,
    cli,
    complete,
    create_run,
    create_source,
    fail,
    unique,
)
from tests.gateway.test_console_browser import ARTIFACTS, CHROMIUM, _signed_in

pytestmark = pytest.mark.integration


async def _failed_run(stack: Any) -> tuple[str, str]:
    """A chain run whose first job died: (run id, job type)."""
    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(), timeout=20) as c:
        job_type = unique("jt")
        source = await create_source(c)
        run_id = (await create_run(c, source["id"], job_type))["run"]["id"]
        (assignment,) = await claim(stack, job_type)
        await fail(stack, job_type, assignment, message="broken upstream window")
        run = (await c.get(f"/runs/{run_id}")).json()
        assert run["state"] == "failed", run
    return run_id, job_type


async def _finish(stack: Any, job_type: str, n: int) -> list[str]:
    """Claims and completes ``n`` jobs one after another (a chain); returns their ids."""
    done = []
    for _ in range(n):
        (assignment,) = await claim(stack, job_type)
        await complete(stack, job_type, assignment)
        done.append(assignment.job_id)
    return done


def _succeeded_events(stack: Any, run_id: str) -> dict[str, int]:
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT j.key, count(*) FROM orchestrator.events e JOIN orchestrator.jobs j"
            " ON j.id = e.job_id WHERE e.run_id = %s AND e.type = 'job.succeeded'"
            " GROUP BY j.key",
            (run_id,),
        ).fetchall()
    return {key: n for key, n in rows}


async def test_rest_resume_of_a_failed_run(stack) -> None:
    run_id, job_type = await _failed_run(stack)
    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(), timeout=20) as c:
        no_reason = await c.post(f"/runs/{run_id}/resume")
        assert no_reason.status_code == 400, no_reason.text

        resumed = await c.post(f"/runs/{run_id}/resume", headers=REASON)
        assert resumed.status_code == 200, resumed.text
        body = resumed.json()
        assert body["run"]["state"] == "running"
        assert (body["retried_job_count"], body["revived_job_count"]) == (1, 2)
        dag = (await c.get(f"/runs/{run_id}/dag")).json()
        assert {j["key"]: j["state"] for j in dag["jobs"]} == {
            "j0": "ready",
            "j1": "pending",
            "j2": "pending",
        }

        await _finish(stack, job_type, 3)
        assert (await c.get(f"/runs/{run_id}")).json()["state"] == "succeeded"
        assert _succeeded_events(stack, run_id) == {"j0": 1, "j1": 1, "j2": 1}

        again = await c.post(f"/runs/{run_id}/resume", headers=REASON)
        assert again.status_code == 409, again.text
        assert again.json()["grpc_status"] == "FAILED_PRECONDITION"
        assert "only failed runs can be resumed" in again.json()["detail"]

        # Filtered by action: the session's other tests write audit entries too, and the
        # list is in seq order, so an unfiltered first page need not reach this one.
        audit = (await c.get("/audit", params={"action": "run.resume", "page_size": 500})).json()[
            "items"
        ]
        entries = [a for a in audit if a["target"] == f"runs/{run_id}"]
        assert [(a["action"], a["reason"], a["ticket"]) for a in entries] == [
            ("run.resume", REASON["X-Stella-Operator-Reason"], "OPS-1")
        ]


def test_cli_runs_resume(stack, capsys) -> None:
    run_id, job_type = asyncio.run(_failed_run(stack))
    with pytest.raises(SystemExit) as usage:  # --reason is required: a usage error
        cli(stack, capsys, "runs", "resume", run_id)
    assert usage.value.code == 2
    assert "--reason" in capsys.readouterr().err

    code, out, err = cli(
        stack, capsys, "runs", "resume", run_id, "--reason", "vendor re-published the window"
    )
    assert code == 0, err
    assert out.strip() == f"run {run_id} running: 1 dead job(s) retried, 2 canceled job(s) revived"
    asyncio.run(_finish(stack, job_type, 3))
    assert _succeeded_events(stack, run_id) == {"j0": 1, "j1": 1, "j2": 1}

    # A succeeded run is refused: a plain error (exit 1) that says why.
    code, out, err = cli(stack, capsys, "runs", "resume", run_id, "--reason", "again", "-o", "json")
    assert code == 1
    assert "only failed runs can be resumed" in " ".join(err.split())
    code, out, _ = cli(stack, capsys, "runs", "show", run_id, "-o", "json", scopes=CLI_SCOPES)
    assert code == 0
    assert json.loads(out)["run"]["state"] == "succeeded"


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_console_resumes_a_failed_run(stack) -> None:
    from playwright.sync_api import expect

    run_id, _ = asyncio.run(_failed_run(stack))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with _signed_in(stack, stack.token(subject="console-operator"), errors) as page:
        page.goto(f"{stack.base_url}/#/runs/{run_id}")
        expect(page.get_by_test_id("run-state")).to_contain_text("failed")
        page.get_by_role("button", name="Resume run").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_role("button", name="Confirm")).to_be_disabled()  # reason first
        dialog.get_by_label("Reason (required)").fill("upstream window fixed")
        dialog.get_by_role("button", name="Confirm").click()
        expect(page.get_by_test_id("run-state")).to_contain_text("running")
        expect(page.get_by_role("button", name="Cancel run")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "run-resumed.png"))
    assert errors == []
