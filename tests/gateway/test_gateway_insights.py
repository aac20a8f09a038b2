"""The Console's own reads over real HTTP: the failure heatmap, SLO burn over 1 h / 6 h / 3 d,
the job search by error class and time range, tenant weights, and the audit bundle download.
Other tests of the session share the tenant, so counts are checked at least, per source, or
for this test's own jobs."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from stella.orchestrator.v1 import common_pb2
from tests.gateway._helpers import REASON, claim, complete, create_source, fail, unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(), timeout=30) as c:
        yield c


async def _failed_and_succeeded(client: httpx.AsyncClient, stack) -> dict:
    """One source with two jobs of a fresh type: one dies with an upstream 5xx, one succeeds."""
    job_type = unique("jt")
    source = await create_source(client)
    ids = []
    for _ in range(2):
        body = {"job": {"job_type": job_type, "source_id": source["id"], "max_attempts": 1}}
        resp = await client.post("/jobs", json=body)
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["job"]["id"])
    assignments = []
    while len(assignments) < 2:
        assignments += await claim(stack, job_type, max_jobs=2 - len(assignments))
    by_id = {a.job_id: a for a in assignments}
    await fail(stack, job_type, by_id[ids[0]], error_class=common_pb2.ERROR_CLASS_HTTP_5XX)
    await complete(stack, job_type, by_id[ids[1]])
    return {"source": source, "job_type": job_type, "dead": ids[0], "succeeded": ids[1]}


async def test_failure_heatmap_counts_the_sources_failures_in_the_current_hour(
    client, stack
) -> None:
    made = await _failed_and_succeeded(client, stack)
    resp = await client.get("/insights/failure-heatmap", params={"hours": 6})
    assert resp.status_code == 200, resp.text
    heat = resp.json()
    assert len(heat["hours"]) == 6
    now = datetime.now(UTC)
    assert datetime.fromisoformat(heat["since"]) <= now < datetime.fromisoformat(heat["until"])
    (row,) = [r for r in heat["rows"] if r["source_id"] == made["source"]["id"]]
    assert row["source_name"] == made["source"]["name"]
    assert sum(row["failures"]) == 1
    assert sum(row["attempts"]) == 2
    current = max(i for i, h in enumerate(heat["hours"]) if datetime.fromisoformat(h) <= now)
    assert row["failures"][current] == 1 or row["failures"][current - 1] == 1  # hour turned
    resp = await client.get("/insights/failure-heatmap", params={"hours": 0})
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_slo_burn_over_three_windows(client, stack) -> None:
    await _failed_and_succeeded(client, stack)
    resp = await client.get("/insights/slo")
    assert resp.status_code == 200, resp.text
    slo = resp.json()
    assert [w["window"] for w in slo["windows"]] == ["1h", "6h", "3d"]
    assert 0 < slo["target"] < 1
    short, mid, long = slo["windows"]
    assert short["failed_attempts"] >= 1
    assert short["succeeded"] >= 1
    assert short["failed_attempts"] <= mid["failed_attempts"] <= long["failed_attempts"]
    for w in slo["windows"]:
        finished = w["succeeded"] + w["failed_attempts"]
        assert w["failure_rate"] == pytest.approx(w["failed_attempts"] / finished)
        assert w["burn_rate"] == pytest.approx(w["failure_rate"] / (1 - slo["target"]))


async def test_job_search_by_error_class_source_and_failure_time(client, stack) -> None:
    made = await _failed_and_succeeded(client, stack)
    source_id = made["source"]["id"]
    found = await client.get(
        "/insights/jobs", params={"source_id": source_id, "error_class": "http_5xx"}
    )
    assert found.status_code == 200, found.text
    assert [j["id"] for j in found.json()["items"]] == [made["dead"]]
    job = found.json()["items"][0]
    assert job["state"] == "dead"
    assert job["last_error_class"] == "http_5xx"
    assert job["job_type"] == made["job_type"]

    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    failed_now = {
        "source_id": source_id,
        "since": (hour - timedelta(hours=1)).isoformat(),
        "until": (hour + timedelta(hours=1)).isoformat(),
        "failed_in_range": "true",
    }
    resp = await client.get("/insights/jobs", params=failed_now)
    assert [j["id"] for j in resp.json()["items"]] == [made["dead"]]
    resp = await client.get(
        "/insights/jobs", params={**failed_now, "until": (hour - timedelta(hours=1)).isoformat()}
    )
    assert resp.json()["items"] == []
    # Created in the range: both; by state: one each; paged one at a time.
    created = {k: v for k, v in failed_now.items() if k != "failed_in_range"}
    resp = await client.get("/insights/jobs", params={**created, "page_size": 1})
    first = resp.json()
    assert len(first["items"]) == 1
    assert first["next_page_token"]
    resp = await client.get(
        "/insights/jobs", params={**created, "page_size": 1, "page_token": first["next_page_token"]}
    )
    assert {first["items"][0]["id"], resp.json()["items"][0]["id"]} == {
        made["dead"],
        made["succeeded"],
    }
    resp = await client.get("/insights/jobs", params={**created, "state": "succeeded"})
    assert [j["id"] for j in resp.json()["items"]] == [made["succeeded"]]
    # Another tenant sees none of them; a bad token or class is a problem.
    other = stack.headers(tenant=stack.other_tenant)
    resp = await client.get("/insights/jobs", params=created, headers=other)
    assert resp.status_code == 200
    assert resp.json()["items"] == []
    for bad in ({"page_token": "nope"}, {"error_class": "nope"}, {"source_id": "x"}):
        resp = await client.get("/insights/jobs", params=bad)
        assert resp.status_code == 400, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")


async def test_tenants_show_the_weights_of_the_granted_tenants(client, stack) -> None:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE orchestrator.tenants SET weight = 3 WHERE id = %s", (stack.other_tenant,)
        )
    try:
        both = {
            "Authorization": "Bearer " + _two_tenant_token(stack),
            "X-Stella-Tenant": stack.tenant,
        }
        resp = await client.get("/tenants", headers=both)
        assert resp.status_code == 200, resp.text
        weights = {t["id"]: t["weight"] for t in resp.json()["items"]}
        assert weights == {stack.tenant: 1, stack.other_tenant: 3}
        resp = await client.get("/tenants")
        assert [t["id"] for t in resp.json()["items"]] == [stack.tenant]
    finally:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE orchestrator.tenants SET weight = 1 WHERE id = %s", (stack.other_tenant,)
            )


def _two_tenant_token(stack) -> str:
    from orchestrator_grpckit import mint_dev_token
    from tests.conftest import DEV_SECRET

    return mint_dev_token(DEV_SECRET, "tester", [stack.tenant, stack.other_tenant], ["orch:read"])


async def test_audit_bundle_downloads_as_a_tar_with_its_digest(client, stack) -> None:
    made = await _failed_and_succeeded(client, stack)
    resp = await client.get("/audit/bundle", params={"source_id": made["source"]["id"]})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/x-tar"
    assert "attachment" in resp.headers["content-disposition"]
    assert resp.headers["x-bundle-sha256"] == hashlib.sha256(resp.content).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(resp.content)) as tar:
        names = tar.getnames()
    assert "manifest.json" in names
    resp = await client.get("/audit/bundle")
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")
    resp = await client.get("/audit/bundle", params={"start": datetime.now(UTC).isoformat()})
    assert resp.status_code == 400


async def test_quota_usage_counts_a_job_types_queued_and_leased_jobs(client, stack) -> None:
    job_type = unique("jt")
    quota = {"job_type": job_type, "max_active": 4, "max_per_hour": 100, "max_queued": 10}
    resp = await client.post(
        "/quotas", json=quota, headers=stack.headers(("orch:read", "orch:quota")) | REASON
    )
    assert resp.status_code == 201, resp.text
    quota_id = resp.json()["id"]
    for _ in range(3):
        resp = await client.post("/jobs", json={"job": {"job_type": job_type}})
        assert resp.status_code == 201, resp.text
    assert len(await claim(stack, job_type)) == 1
    resp = await client.get("/insights/quota-usage")
    assert resp.status_code == 200, resp.text
    (usage,) = [u for u in resp.json()["items"] if u["quota_id"] == quota_id]
    assert usage["job_type"] == job_type
    assert usage["active"] == 1
    assert usage["queued"] == 2
    assert 0 <= usage["hourly_tokens_left"] < 100
