"""Every Console view in headless Chromium against demo-shaped data (``_demo_data``: four
feeds, 114-job runs worked with failures, schedules, quotas, a webhook): each view's content is
asserted, a screenshot of each is saved under test-artifacts/console-views/ (and, with
ORCH_UPDATE_DOCS_IMAGES=1, copied to docs/img/console-<view>.png for the docs: a test run
never changes the repository otherwise), and any Content-Security-Policy violation or page
error fails the test."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.gateway import _demo_data as demo
from tests.gateway.test_console_browser import CHROMIUM, _signed_in

ROOT = Path(__file__).resolve().parents[2]
DOCS_IMG = ROOT / "docs" / "img"
ARTIFACTS = ROOT / "test-artifacts" / "console-views"
VIEWPORT = {"width": 1400, "height": 900}
SCHEDULE_FIRE_WAIT_MS = 150_000  # the every-minute schedule fires within ~60 s, more if loaded

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    # Seeding 456 jobs, ~20 views and a schedule's first fire: about a minute here, several
    # on a loaded CI machine (whose default per-test limit is 300 s).
    pytest.mark.timeout(900),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
]


def _seed(stack) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        headers = stack.headers(("orch:read", "orch:operate"))
        async with httpx.AsyncClient(base_url=stack.api, headers=headers, timeout=60) as http:
            return await demo.seed(stack, http)

    return asyncio.run(run())


def _set_weight(stack, weight: int) -> None:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE orchestrator.tenants SET weight = %s WHERE id = %s", (weight, stack.tenant)
        )


def test_every_console_view_on_demo_shaped_data(stack, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # Generous bounded waits: a loaded machine may take seconds to answer a view's requests.
    expect.set_options(timeout=20_000)
    data = _seed(stack)
    nvd = data["runs"]["nvd"]
    nvd_source = data["sources"]["nvd"]
    shots: list[Path] = []

    def shot(page: Any, name: str) -> None:
        path = tmp_path / f"console-{name}.png"
        page.screenshot(path=str(path))
        shots.append(path)

    def open_view(page: Any, link: str, heading: str) -> None:
        page.get_by_role("navigation", name="sections").get_by_role(
            "link", name=link, exact=True
        ).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page.locator("[aria-busy=true]")).to_have_count(0)

    token = stack.token(
        ("orch:read", "orch:operate", "orch:quota", "orch:backfill"), subject="console-operator"
    )
    errors: list[str] = []
    _set_weight(stack, 3)
    try:
        with _signed_in(stack, token, errors) as page:
            page.set_viewport_size(VIEWPORT)
            expect(page.get_by_test_id("live")).to_contain_text("live", timeout=15_000)

            # The 114-job DAG fits one 1400 x 900 screen at the default zoom, every job drawn.
            page.goto(f"{stack.base_url}/#/runs/{nvd.run.id}")
            dag = page.get_by_test_id("dag")
            nodes = dag.locator("svg g.node")
            expect(nodes).to_have_count(demo.JOBS_PER_RUN)
            expect(dag.get_by_test_id("zoom")).to_have_text("100%")
            dag.scroll_into_view_if_needed()
            box = dag.bounding_box()
            assert box is not None
            assert box["width"] <= VIEWPORT["width"], box
            assert box["height"] <= VIEWPORT["height"], box
            svg = dag.locator("svg").bounding_box()
            assert svg is not None
            assert svg["x"] + svg["width"] <= box["x"] + box["width"] + 1, (svg, box)  # no scroll
            # Readable: labels at least 10 px, one per job.
            size = dag.locator("text.node-key").first.evaluate(
                "t => parseFloat(getComputedStyle(t).fontSize)"
            )
            assert size >= 10
            expect(dag.locator("g.node[data-key='ingest-5'].state-dead")).to_have_count(1)
            expect(dag.locator("g.node[data-key='policy-0'].state-canceled")).to_have_count(1)
            expect(dag.locator("g.node.state-succeeded")).not_to_have_count(0)
            page.evaluate("window.scrollTo(0, 0)")
            dag.scroll_into_view_if_needed()
            shot(page, "run-dag")
            # Search highlights; grouping by job type or level collapses to one node per group.
            dag.get_by_label("Search").fill("ingest-1")
            expect(dag.get_by_test_id("dag-matches")).to_have_text("11 of 114 jobs match")
            expect(dag.locator("g.node.match")).to_have_count(11)
            dag.get_by_label("Group by").select_option("job_type")
            groups = dag.locator("g.node.group")
            expect(groups).to_have_count(4)
            expect(dag.locator("g[data-group='advisory.ingest']")).to_contain_text("36")
            shot(page, "run-dag-grouped")
            dag.get_by_label("Group by").select_option("level")
            expect(groups).to_have_count(4)
            dag.locator("g[data-group='level 3']").click()
            expect(nodes).to_have_count(6)
            dag.get_by_label("Search").fill("")
            dag.get_by_role("button", name="zoom in").click()
            expect(dag.get_by_test_id("zoom")).to_have_text("125%")

            # Failures: the heatmap's rows are the feeds; a cell opens the filtered job list.
            open_view(page, "Failures", "Failures")
            heat = page.get_by_test_id("heatmap")
            nvd_row = heat.locator(f"tr[data-source='{nvd_source.name}']")
            expect(nvd_row.get_by_test_id("row-total")).to_have_text("3")
            csaf_row = heat.locator(f"tr[data-source='{data['sources']['csaf-vendor'].name}']")
            expect(csaf_row.get_by_test_id("row-total")).to_have_text("6")
            expect(heat.locator("td.heat-5")).not_to_have_count(0)
            shot(page, "failures")
            nvd_row.locator("td.cell a").last.click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Jobs")
            jobs = page.get_by_test_id("job-list")
            expect(jobs.locator("tbody tr")).to_have_count(3)
            expect(jobs).to_contain_text("http_5xx")
            expect(jobs).to_contain_text("schema_mismatch")
            expect(page.get_by_label("Source")).to_have_value(nvd_source.id)
            expect(page.get_by_label("Time of")).to_have_value("true")
            # Filters: by error class, then by state and type across every feed.
            page.get_by_label("Error class").select_option("http_5xx")
            expect(jobs.locator("tbody tr")).to_have_count(2)
            shot(page, "jobs")
            page.goto(f"{stack.base_url}/#/jobs?state=canceled&job_type=policy.evaluate")
            # nvd's windows 5, 17 and 30 and csaf-vendor's first shard died upstream of them.
            expect(page.get_by_test_id("job-list").locator("tbody tr")).to_have_count(4)

            open_view(page, "SLO", "SLO")
            slo = page.get_by_test_id("slo")
            expect(slo.locator(".tile")).to_have_count(3)
            expect(page.get_by_test_id("slo-windows")).to_contain_text("3 days")
            one_hour = page.get_by_test_id("slo-windows").locator("tbody tr").first
            expect(one_hour.locator("td").nth(2)).not_to_have_text("0")  # failed attempts
            shot(page, "slo")

            open_view(page, "Quotas", "Quotas")
            quotas = page.get_by_test_id("quotas")
            ingest = quotas.locator("tr", has_text="advisory.ingest")
            expect(ingest).to_contain_text("0 / 48")
            sbom = quotas.locator("tr", has_text="sbom.scan")
            expect(sbom.get_by_test_id("active")).to_contain_text("/ 24")
            weights = page.get_by_test_id("tenant-weights")
            expect(weights.get_by_test_id("weight")).to_have_text("3")
            expect(weights).to_contain_text("100%")
            shot(page, "quotas")

            open_view(page, "Watermarks", "Watermarks")
            marks = page.get_by_test_id("watermarks")
            expect(marks.locator("tr", has_text=nvd_source.name)).not_to_have_count(0)
            expect(marks).to_contain_text("advisory.ingest")
            expect(marks).to_contain_text("2026-12-0")
            shot(page, "watermarks")

            open_view(page, "Runs", "Runs")
            expect(page.get_by_test_id("runs")).to_contain_text("nvd-pipeline")
            shot(page, "runs")
            open_view(page, "Sources", "Sources")
            expect(page.get_by_test_id("sources")).to_contain_text(nvd_source.name)
            shot(page, "sources")
            open_view(page, "Dead letter", "Dead letter")
            expect(page.get_by_test_id("clusters")).to_contain_text("parse_error")
            shot(page, "dead-letter")
            # csaf-vendor's six parse errors of one type opened an incident.
            open_view(page, "Incidents", "Incidents")
            expect(page.get_by_test_id("incidents")).to_contain_text("parse_error", timeout=30_000)
            shot(page, "incidents")
            for link, name in (
                ("Overview", "overview"),
                ("Throttles", "throttles"),
                ("Backfills", "backfills"),
            ):
                open_view(page, link, link)
                expect(page.locator("main table, main .tile, main .state").first).to_be_visible()
                shot(page, name)

            # Webhooks: the subscription made before the failures, its delivery log and a
            # redelivery; a new one from the form (its secret shown once); disable it.
            open_view(page, "Webhooks", "Webhooks")
            hooks = page.get_by_test_id("webhooks")
            expect(hooks).to_contain_text("siem.example")
            form = page.get_by_role("form", name="new webhook")
            form.get_by_label("URL").fill("https://chatops.example/orchestrator")
            form.get_by_label("Event types (comma-separated)").fill("incident.opened, run.finished")
            form.get_by_label("Description").fill("on-call channel")
            form.get_by_role("button", name="Create webhook").click()
            page.get_by_role("dialog").get_by_label("Reason (required)").fill("page on-call")
            page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
            expect(page.get_by_test_id("webhook-secret")).to_contain_text("whsec_")
            chatops = hooks.locator("tr", has_text="chatops.example")
            expect(chatops.get_by_test_id("webhook-state")).to_contain_text("active")
            chatops.get_by_role("button", name="Disable").click()
            page.get_by_role("dialog").get_by_label("Reason (required)").fill("channel moved")
            page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
            expect(chatops.get_by_test_id("webhook-state")).to_contain_text("disabled")
            shot(page, "webhooks")
            hooks.get_by_role("link", name="https://siem.example/hooks/orchestrator").click()
            deliveries = page.get_by_test_id("deliveries")
            expect(deliveries).to_contain_text("job.dead", timeout=30_000)
            expect(deliveries).to_contain_text("run.failed")  # run.finished: succeeded or failed
            first = deliveries.locator("tbody tr").first
            first.get_by_role("button", name="Redeliver").click()
            page.get_by_role("dialog").get_by_label("Reason (required)").fill("receiver fixed")
            page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
            expect(page.get_by_role("dialog")).to_have_count(0)
            shot(page, "webhook-deliveries")

            # Audit: a bundle of the nvd run, exported and downloaded; its digest matches.
            open_view(page, "Audit log", "Audit log")
            bundle = page.get_by_role("form", name="export audit bundle")
            bundle.get_by_label("Scope").select_option("run_id")
            bundle.get_by_label("Run id").fill(nvd.run.id)
            bundle.get_by_role("button", name="Export bundle").click()
            digest = page.get_by_test_id("bundle-sha256")
            expect(digest).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
            with page.expect_download() as download:
                page.get_by_test_id("bundle-download").click()
            saved = tmp_path / "bundle.tar"
            download.value.save_as(saved)
            assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest.inner_text()
            # The log lists oldest first and the session's other tests wrote entries before
            # these, so this test's webhook entry may sit pages further: the view must list
            # operator actions; the entry itself is checked through the same REST list.
            audit = page.get_by_test_id("audit")
            expect(audit.locator("tbody tr").first).to_be_visible()
            expect(audit.locator("tbody tr").first.locator("td").nth(3)).to_have_text(
                re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
            )
            entries = httpx.get(
                f"{stack.api}/audit",
                params={"action": "webhook.create", "page_size": 200},
                headers=stack.headers(),
                timeout=30,
            ).json()["items"]
            assert entries, "the webhook's creation is not in the audit log"
            shot(page, "audit")

            # Schedules last: by now the every-minute one has fired (its run in the history).
            open_view(page, "Schedules", "Schedules")
            schedules = page.get_by_test_id("schedules")
            hourly = schedules.locator("tr", has_text="nvd-hourly")
            expect(hourly.get_by_test_id("next-fires").locator("li")).to_have_count(3)
            expect(hourly.get_by_test_id("next-fires")).to_contain_text(":00:00 UTC")
            nightly = schedules.locator("tr", has_text="csaf-nightly")
            expect(nightly.get_by_test_id("next-fires")).to_contain_text("02:30:00 UTC")
            minute = schedules.locator("tr", has_text="osv-every-minute")
            expect(minute.get_by_test_id("schedule-history").locator("li")).not_to_have_count(
                0, timeout=SCHEDULE_FIRE_WAIT_MS
            )
            shot(page, "schedules")
    finally:
        _set_weight(stack, 1)
    assert errors == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for path in shots:
        assert path.stat().st_size > 5_000, path
        shutil.copyfile(path, ARTIFACTS / path.name)
        if os.environ.get("ORCH_UPDATE_DOCS_IMAGES") == "1":
            shutil.copyfile(path, DOCS_IMG / path.name)
