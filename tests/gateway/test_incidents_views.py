"""Incidents over REST, the CLI and the Console (real Chromium), on a running stack whose
scheduler opens them from real failures: list, one with its timeline, acknowledge (who and
why), and the Console's incident view with its acknowledge button."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from stella_orchestrator.cli import main
from tests.gateway._helpers import make_incident, wait_for_incident

CHROMIUM = os.environ.get("ORCH_TEST_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
ALL = ("orch:read", "orch:operate")

pytestmark = pytest.mark.integration


def _seed(stack) -> tuple[dict, dict]:
    async def run():
        async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(ALL)) as c:
            made = await make_incident(c, stack)
            return made, await wait_for_incident(c, made["job_type"])

    return asyncio.run(run())


def _cli(stack, capsys, *argv: str, subject: str = "tester") -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(
        [
            "orchestrator",
            *argv,
            "--api-url",
            stack.base_url,
            "--token",
            stack.token(ALL, subject=subject),
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_rest_and_cli_list_show_and_acknowledge(stack, capsys) -> None:
    made, incident = _seed(stack)
    assert incident["state"] == "open"
    assert incident["error_class"] == "http_5xx"
    assert incident["failure_count"] == 5
    assert sorted(incident["sample_job_ids"]) == sorted(made["job_ids"])
    assert incident["source_id"] == made["source"]["id"]

    code, out, _ = _cli(stack, capsys, "incidents", "list", "--state", "open", "-o", "json")
    assert code == 0
    assert incident["id"] in [i["id"] for i in json.loads(out)["items"]]
    code, out, _ = _cli(stack, capsys, "incidents", "show", incident["id"])
    assert code == 0
    assert "incident.opened" in out
    assert incident["reason_code"] in out

    async def refused() -> httpx.Response:
        async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(ALL)) as c:
            return await c.post(f"/incidents/{incident['id']}/acknowledge")  # no reason

    assert asyncio.run(refused()).status_code == 400
    code, out, _ = _cli(
        stack,
        capsys,
        "incidents",
        "ack",
        incident["id"],
        "--reason",
        "looking into the upstream",
        "--ticket",
        "OPS-7",
        subject="carol",
    )
    assert code == 0, out
    assert "as carol" in out
    code, out, _ = _cli(stack, capsys, "incidents", "show", incident["id"], "-o", "json")
    shown = json.loads(out)
    assert shown["incident"]["acknowledged_by"] == "carol"
    assert shown["incident"]["acknowledge_reason"] == "looking into the upstream"
    assert [e["type"] for e in shown["timeline"]] == ["incident.opened", "incident.acknowledged"]
    # a second acknowledgement is refused (409: failed precondition), exit 1
    code, _, err = _cli(
        stack, capsys, "incidents", "ack", incident["id"], "--reason", "again", subject="dave"
    )
    assert code == 1
    assert "acknowledged by carol" in " ".join(err.split())  # rich wraps lines

    async def audited() -> list[dict]:
        async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(ALL)) as c:
            resp = await c.get("/audit", params={"action": "incident.acknowledge"})
            assert resp.status_code == 200, resp.text
            return resp.json()["items"]

    entries = [e for e in asyncio.run(audited()) if e["target"] == f"incidents/{incident['id']}"]
    assert [(e["actor"]["subject"], e["reason"], e["ticket"]) for e in entries] == [
        ("carol", "looking into the upstream", "OPS-7")
    ]


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_console_shows_an_opened_incident_and_acknowledges_it(stack) -> None:
    from playwright.sync_api import expect, sync_playwright

    _, incident = _seed(stack)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    token = stack.token(ALL, subject="console-operator")
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(stack.base_url + "/")
        page.get_by_label("Bearer token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("navigation", name="sections").get_by_role(
            "link", name="Incidents"
        ).click()
        row = page.locator(f"[data-testid=incidents] tr[data-id='{incident['id']}']")
        expect(row).to_contain_text("open", timeout=30_000)
        expect(row).to_contain_text("http_5xx")
        expect(row).to_contain_text(incident["job_type"])
        page.screenshot(path=str(ARTIFACTS / "incidents-list.png"))

        row.get_by_role("link", name=incident["reason_code"]).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Incident")
        expect(page.get_by_test_id("incident-state")).to_contain_text("open")
        expect(page.get_by_test_id("incident-failures")).to_have_text("5")
        expect(page.get_by_test_id("incident-samples").get_by_role("link")).to_have_count(5)
        expect(page.get_by_test_id("incident-timeline")).to_contain_text("opened")
        page.get_by_test_id("acknowledge").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("Reason (required)").fill("paging the feed owner")
        dialog.get_by_role("button", name="Confirm").click()
        expect(page.get_by_test_id("incident-ack")).to_contain_text("console-operator")
        expect(page.get_by_test_id("incident-ack")).to_contain_text("paging the feed owner")
        expect(page.get_by_test_id("incident-timeline")).to_contain_text("acknowledged")
        expect(page.get_by_test_id("acknowledge")).to_be_disabled()
        page.screenshot(path=str(ARTIFACTS / "incident-detail.png"))
        browser.close()
    assert errors == []
