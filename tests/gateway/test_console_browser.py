"""The Console in real headless Chromium (Debian ``chromium`` driven by Playwright) on a
running stack: every section opens (screenshots kept under test-artifacts/console/,
git-ignored), pause → resume of a source, retry of a dead-letter entry, a job that changes
state while its page is open, without a reload, and an incident the scheduler opened from
real failures, acknowledged from its page."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway._helpers import (
    claim,
    complete,
    create_run,
    create_source,
    make_dead_job,
    make_incident,
    unique,
    wait_for_incident,
)

CHROMIUM = os.environ.get("ORCH_TEST_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
SECTIONS = [
    ("Overview", "Overview"),
    ("Sources", "Sources"),
    ("Runs", "Runs"),
    ("Dead letter", "Dead letter"),
    ("Incidents", "Incidents"),
    ("Throttles", "Throttles"),
    ("Backfills", "Backfills"),
    ("Audit log", "Audit log"),
]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
]


def _off_loop(coro):
    """Run a coroutine on a fresh loop in another thread (Playwright's sync API owns this
    thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@contextmanager
def _signed_in(stack, token: str, errors: list[str]) -> Iterator[Any]:
    """A Chromium page signed in to the Console with ``token``; page errors and
    Content-Security-Policy violations go to ``errors``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # The gateway's strict Content-Security-Policy must not block anything the Console does.
        page.on(
            "console",
            lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
        page.goto(stack.base_url + "/")
        page.get_by_label("Bearer token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        yield page
        browser.close()


def _seed(stack):
    async def run():
        headers = stack.headers(("orch:read", "orch:operate", "orch:quota"))
        async with httpx.AsyncClient(base_url=stack.api, headers=headers, timeout=30) as c:
            job_type = unique("jt")
            source = await create_source(c)
            created = await create_run(c, source["id"], job_type)
            dead = await make_dead_job(c, stack)
            return source, created, job_type, dead

    return asyncio.run(run())


def test_console_sections_controls_and_live_updates(stack) -> None:
    from playwright.sync_api import expect

    source, created, job_type, dead = _seed(stack)
    run_id = created["run"]["id"]
    first_job = next(j for j in created["jobs"] if j["key"] == "j0")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    token = stack.token(
        ("orch:read", "orch:operate", "orch:quota", "orch:backfill"), subject="console-user"
    )
    errors: list[str] = []

    with _signed_in(stack, token, errors) as page:
        expect(page.get_by_test_id("live")).to_contain_text("live", timeout=15_000)
        # The token stays in the page's memory: no Web Storage an injected script could read.
        stored = page.evaluate("() => JSON.stringify([{...sessionStorage}, {...localStorage}])")
        assert token not in stored

        # Every section, reached from the navigation, with a screenshot.
        for link, heading in SECTIONS:
            page.get_by_role("navigation", name="sections").get_by_role("link", name=link).click()
            expect(page.get_by_role("heading", level=1)).to_have_text(heading)
            # Loaded: no spinner left, and a table, a tile or an empty/error state shown.
            expect(page.locator("[aria-busy=true]")).to_have_count(0)
            expect(page.locator("main table, main .tile, main .state").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / f"{link.lower().replace(' ', '-')}.png"))
        # The audit log answers (the audit service runs in this stack): no error state.
        page.get_by_role("link", name="Audit log").click()
        expect(page.locator("[aria-busy=true]")).to_have_count(0)
        expect(page.get_by_role("alert")).to_have_count(0)

        # Pause -> resume a source, each confirmed with a reason.
        page.get_by_role("link", name="Sources").click()
        row = page.locator(f"tr[data-id='{source['id']}']")
        row.get_by_role("button", name="Pause").click()
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_role("button", name="Confirm")).to_be_disabled()
        dialog.get_by_label("Reason (required)").fill("upstream maintenance")
        dialog.get_by_label("Ticket").fill("OPS-42")
        dialog.get_by_role("button", name="Confirm").click()
        expect(row.get_by_test_id("source-state")).to_contain_text("paused")
        expect(row.get_by_test_id("source-state")).to_contain_text("upstream maintenance")
        page.screenshot(path=str(ARTIFACTS / "sources-paused.png"))
        row.get_by_role("button", name="Resume").click()
        page.get_by_role("dialog").get_by_label("Reason (required)").fill("maintenance over")
        page.keyboard.press("Enter")  # keyboard submits the dialog
        expect(row.get_by_test_id("source-state")).to_contain_text("active")
        # Throttle the source's host to 2 requests/s for 5 minutes.
        row.get_by_role("button", name="Throttle").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("Requests per second (0 pauses)").fill("2")
        dialog.get_by_label("For minutes").fill("5")
        dialog.get_by_label("Reason (required)").fill("upstream asked us to slow down")
        dialog.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("dialog")).to_have_count(0)
        expect(row).to_contain_text("2/s of")

        # Retry a dead-letter entry.
        page.get_by_role("link", name="Dead letter").click()
        dead_row = page.locator("table[data-testid=deadletter] tr", has_text=dead["job_type"])
        expect(dead_row).to_have_count(1)
        dead_row.get_by_role("button", name="Retry").click()
        page.get_by_role("dialog").get_by_label("Reason (required)").fill("fixed the parser")
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        expect(dead_row).to_have_count(0)
        job = httpx.get(
            f"{stack.api}/jobs/{dead['job']['id']}", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert job["state"] == "ready"

        # A backfill: preview (dry run), then create, each confirmed with reason and ticket.
        page.get_by_role("link", name="Backfills").click()
        form = page.get_by_role("form", name="new backfill")
        form.get_by_label("Source").select_option(label=source["name"])
        form.get_by_label("Job type").fill(unique("bf"))
        form.get_by_label("From (UTC)").fill("2026-01-01T00:00")
        form.get_by_label("To (UTC)").fill("2026-01-01T06:00")
        form.get_by_role("button", name="Preview").click()
        page.get_by_role("dialog").get_by_label("Reason (required)").fill("NVD outage")
        page.get_by_role("dialog").get_by_label("Ticket").fill("OPS-77")
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        expect(page.get_by_test_id("backfill-preview")).to_contain_text("6")
        form.get_by_role("button", name="Create backfill").click()
        page.get_by_role("dialog").get_by_label("Reason (required)").fill("NVD outage")
        page.get_by_role("dialog").get_by_label("Ticket").fill("OPS-77")
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        expect(page.locator("table[data-testid=backfills] tbody tr")).to_have_count(1)
        expect(page.locator("table[data-testid=backfills]")).to_contain_text("OPS-77")
        page.screenshot(path=str(ARTIFACTS / "backfills-created.png"))

        # Run detail: the DAG drawn by the layout library, and the job page.
        page.goto(f"{stack.base_url}/#/runs/{run_id}")
        expect(page.locator("figure.dag svg g.node")).to_have_count(3)
        expect(page.locator("figure.dag svg path.edge")).to_have_count(2)
        page.screenshot(path=str(ARTIFACTS / "run-detail.png"))

        page.goto(f"{stack.base_url}/#/jobs/{first_job['id']}")
        state = page.get_by_test_id("job-state")
        expect(state).to_contain_text("ready")
        page.get_by_role("button", name="Prioritize").click()
        page.get_by_role("dialog").get_by_label("Priority (higher first)").fill("9")
        page.get_by_role("dialog").get_by_label("Reason (required)").fill("customer waiting")
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        expect(page.get_by_test_id("job-priority")).to_have_text("9")
        # A worker leases and completes the job; the open page follows the live stream.
        (assignment,) = _off_loop(claim(stack, job_type))
        assert assignment.job_id == first_job["id"]
        expect(state).to_contain_text("leased", timeout=10_000)
        _off_loop(complete(stack, job_type, assignment))
        expect(state).to_contain_text("succeeded", timeout=10_000)
        expect(page.get_by_test_id("history")).to_contain_text("job.succeeded")
        page.screenshot(path=str(ARTIFACTS / "job-detail.png"))
        page.get_by_role("button", name="Replay").click()
        page.get_by_role("dialog").get_by_label("Reason (required)").fill("re-run after fix")
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        expect(page.get_by_text("Replay of")).to_be_visible()
        expect(page.get_by_test_id("job-state")).to_contain_text("ready")

        page.goto(f"{stack.base_url}/#/runs/{run_id}")
        expect(page.locator("figure.gantt svg rect.bar")).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "run-gantt.png"))
    assert errors == []
    for name in (
        "overview",
        "sources",
        "runs",
        "dead-letter",
        "incidents",
        "throttles",
        "backfills",
    ):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 5_000


def test_console_shows_an_opened_incident_and_acknowledges_it(stack) -> None:
    from playwright.sync_api import expect

    async def seed() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers()) as c:
            made = await make_incident(c, stack)
            return await wait_for_incident(c, made["job_type"])

    incident = asyncio.run(seed())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with _signed_in(stack, stack.token(subject="console-operator"), errors) as page:
        sections = page.get_by_role("navigation", name="sections")
        sections.get_by_role("link", name="Incidents").click()
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
    assert errors == []
