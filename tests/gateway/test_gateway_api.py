"""The REST API over real HTTP against real services and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.gateway._helpers import (
    REASON,
    claim,
    complete,
    create_run,
    create_source,
    make_dead_job,
    unique,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(), timeout=20) as c:
        yield c


@pytest.fixture
async def anon(stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api, timeout=20) as c:
        yield c


def _is_problem(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    return body


async def test_missing_and_bad_tokens_are_401_problems(anon: httpx.AsyncClient) -> None:
    body = _is_problem(await anon.get("/sources"), 401)
    assert body["reason"] == "TOKEN_MISSING"
    resp = await anon.get("/sources", headers={"Authorization": "Bearer not.a.jwt"})
    _is_problem(resp, 401)
    assert "Bearer" in resp.headers["www-authenticate"]


async def test_whoami_reflects_the_token(stack, client: httpx.AsyncClient) -> None:
    resp = await client.get("/whoami")
    assert resp.status_code == 200
    assert resp.json() == {
        "subject": "tester",
        "tenant": stack.tenant,
        "tenants": [stack.tenant],
        "scopes": ["orch:operate", "orch:read"],
    }


async def test_read_only_token_cannot_operate(stack, client: httpx.AsyncClient) -> None:
    source = await create_source(client)
    resp = await client.post(
        f"/sources/{source['id']}/pause", headers={**REASON, **stack.headers(("orch:read",))}
    )
    body = _is_problem(resp, 403)
    assert body["required_scope"] == "orch:operate"


async def test_sources_crud_pause_resume_with_reason(client: httpx.AsyncClient) -> None:
    source = await create_source(client)
    assert source["paused"] is False
    assert source["enabled"] is True
    got = (await client.get(f"/sources/{source['id']}")).json()
    assert got == source

    # A control action without a reason is refused before reaching the service.
    body = _is_problem(await client.post(f"/sources/{source['id']}/pause"), 400)
    assert body["errors"][0]["field"] == "X-Stella-Operator-Reason"

    paused = await client.post(f"/sources/{source['id']}/pause", headers=REASON)
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    assert paused.json()["paused_reason"] == REASON["X-Stella-Operator-Reason"]
    assert paused.json()["paused_ticket"] == "OPS-1"
    resumed = await client.post(
        f"/sources/{source['id']}/resume", headers={"X-Stella-Reason": "done"}
    )
    assert resumed.json()["paused"] is False

    patched = await client.patch(f"/sources/{source['id']}", json={"enabled": False})
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False
    listed = (await client.get("/sources", params={"enabled": "false"})).json()
    assert source["id"] in [s["id"] for s in listed["items"]]

    deleted = await client.delete(f"/sources/{source['id']}", headers=REASON)
    assert deleted.status_code == 204
    _is_problem(await client.get(f"/sources/{source['id']}"), 404)


async def test_grpc_errors_keep_their_details(client: httpx.AsyncClient) -> None:
    body = _is_problem(await client.get("/sources/not-a-uuid"), 400)
    assert body["grpc_status"] == "INVALID_ARGUMENT"
    assert body["errors"][0]["field"] == "source_id"
    body = _is_problem(await client.get("/runs/0190a5a0-0000-7000-8000-000000000000"), 404)
    assert body["resource"]["type"] == "run"


async def test_cursor_pagination_is_stable_and_complete(client: httpx.AsyncClient) -> None:
    created = [(await create_source(client))["id"] for _ in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = (await client.get("/sources", params={"page_size": 2, "page_token": token})).json()
        assert len(page["items"]) <= 2
        seen += [s["id"] for s in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == sorted(seen)
    assert set(created) <= set(seen)
    _is_problem(await client.get("/sources", params={"page_size": 0}), 400)
    _is_problem(await client.get("/sources", params={"page_token": "garbage"}), 400)


async def test_runs_dag_jobs_history_and_cancel(stack, client: httpx.AsyncClient) -> None:
    job_type = unique("jt")
    source = await create_source(client)
    created = await create_run(client, source["id"], job_type)
    run = created["run"]
    assert run["state"] == "pending"
    dag = (await client.get(f"/runs/{run['id']}/dag")).json()
    assert [j["key"] for j in dag["jobs"]] == ["j0", "j1", "j2"]
    assert len(dag["edges"]) == 2
    states = {j["key"]: j["state"] for j in dag["jobs"]}
    assert states == {"j0": "ready", "j1": "pending", "j2": "pending"}

    (assignment,) = await claim(stack, job_type)
    await complete(stack, job_type, assignment)
    first = (await client.get(f"/jobs/{assignment.job_id}")).json()
    assert first["state"] == "succeeded"
    history = (await client.get(f"/jobs/{first['id']}/history")).json()["items"]
    assert [e["type"] for e in history] == ["job.created", "job.leased", "job.succeeded"]
    assert all(e["tenant"] == stack.tenant for e in history)

    jobs = (
        await client.get("/jobs", params={"run_id": run["id"], "state": ["ready", "pending"]})
    ).json()["items"]
    assert [j["key"] for j in jobs] == ["j1", "j2"]

    canceled = await client.post(f"/runs/{run['id']}/cancel", headers=REASON)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["canceled_job_count"] == 2
    assert canceled.json()["run"]["state"] == "canceled"
    body = _is_problem(await client.post(f"/runs/{run['id']}/cancel", headers=REASON), 409)
    assert body["grpc_status"] == "FAILED_PRECONDITION"


async def test_other_tenant_sees_nothing(stack, client: httpx.AsyncClient) -> None:
    source = await create_source(client)
    other = stack.headers(tenant=stack.other_tenant)
    _is_problem(await client.get(f"/sources/{source['id']}", headers=other), 404)
    listed = (await client.get("/sources", headers=other)).json()
    assert source["id"] not in [s["id"] for s in listed["items"]]


async def test_dead_letter_list_stats_show_replay(stack, client: httpx.AsyncClient) -> None:
    dead = await make_dead_job(client, stack)
    entries = (
        await client.get("/deadletter", params={"job_type": dead["job_type"], "status": "pending"})
    ).json()["items"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["job_id"] == dead["job"]["id"]
    assert entry["error_class"] == "schema_mismatch"
    assert entry["retryable"] is False
    assert (await client.get(f"/deadletter/{entry['id']}")).json() == entry

    stats = (await client.get("/deadletter/stats")).json()
    assert stats["by_error_class"]["schema_mismatch"] >= 1
    cluster = next(c for c in stats["clusters"] if c["job_type"] == dead["job_type"])
    assert cluster["count"] == 1
    assert cluster["sample_message"] == "boom"

    _is_problem(await client.post(f"/deadletter/{entry['id']}/replay"), 400)  # no reason
    replayed = await client.post(f"/deadletter/{entry['id']}/replay", headers=REASON)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["entry"]["status"] == "replayed"
    assert replayed.json()["entry"]["resolved_by"] == "tester"
    assert replayed.json()["job"]["state"] == "ready"
    again = _is_problem(await client.post(f"/deadletter/{entry['id']}/replay", headers=REASON), 409)
    assert again["reason"] == "DEAD_LETTER_NOT_PENDING"


async def test_bulk_replay_by_filter(stack, client: httpx.AsyncClient) -> None:
    first = await make_dead_job(client, stack)
    await make_dead_job(client, stack)
    resp = await client.post(
        "/deadletter/replay",
        json={"job_type": first["job_type"], "error_class": "schema_mismatch"},
        headers=REASON,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["matched"] == 1
    assert len(resp.json()["replayed"]) == 1
    job = (await client.get(f"/jobs/{first['job']['id']}")).json()
    assert job["state"] == "ready"


async def test_bulk_replay_by_error_class_replays_exactly_the_matching_entries_once(
    stack, client: httpx.AsyncClient
) -> None:
    from stella.orchestrator.v1 import common_pb2
    from tests.gateway._helpers import claim, create_source, fail

    job_type = unique("bulk")
    source = await create_source(client)
    classes = [common_pb2.ERROR_CLASS_PARSE_ERROR] * 3 + [common_pb2.ERROR_CLASS_TIMEOUT] * 2
    ids = []
    for _ in classes:
        resp = await client.post(
            "/jobs",
            json={"job": {"job_type": job_type, "source_id": source["id"], "max_attempts": 1}},
        )
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["job"]["id"])
    assignments = await claim(stack, job_type, max_jobs=len(ids))
    by_id = {a.job_id: a for a in assignments}
    for job_id, error_class in zip(ids, classes, strict=True):
        await fail(stack, job_type, by_id[job_id], error_class=error_class)
    body = {"job_type": job_type, "error_class": "parse_error"}
    first = await client.post("/deadletter/replay", json=body, headers=REASON)
    assert first.status_code == 200, first.text
    assert (first.json()["matched"], len(first.json()["replayed"])) == (3, 3)
    again = await client.post("/deadletter/replay", json=body, headers=REASON)
    assert (again.json()["matched"], again.json()["replayed"]) == (0, [])  # once only
    states = [(await client.get(f"/jobs/{i}")).json()["state"] for i in ids]
    assert states == ["ready"] * 3 + ["dead"] * 2  # the timeouts were left alone


async def test_job_retry_and_cancel_controls(stack, client: httpx.AsyncClient) -> None:
    dead = await make_dead_job(client, stack)
    job_id = dead["job"]["id"]
    retried = await client.post(f"/jobs/{job_id}/retry", headers=REASON)
    assert retried.status_code == 200
    assert retried.json()["state"] == "ready"
    canceled = await client.post(f"/jobs/{job_id}/cancel", headers=REASON)
    assert canceled.status_code == 200
    assert canceled.json()["state"] == "canceled"
    assert canceled.json()["reason"] == "user_canceled"


async def test_idempotency_key_replays_the_first_answer(client: httpx.AsyncClient) -> None:
    body = {"name": unique("idem"), "source_type": "osv", "host": "osv.example.org"}
    headers = {"Idempotency-Key": unique("key")}
    first = await client.post("/sources", json=body, headers=headers)
    second = await client.post("/sources", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    other = await client.post("/sources", json={**body, "host": "x.example.org"}, headers=headers)
    assert _is_problem(other, 422)["reason"] == "IDEMPOTENCY_KEY_REUSED"


async def test_rate_limit_headers_and_429(stack) -> None:
    import uvicorn

    from orchestrator_gateway import create_app

    # A refill this slow adds no token while the test runs, however loaded the machine.
    settings = stack.gateway_settings(
        rate_per_s=0.0001,
        rate_burst=3,
        ratelimit_key_prefix=f"{stack.redis_prefix}{unique('rl')}:",
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}/api/v1/orchestrator", headers=stack.headers()
        ) as c:
            answers = [await c.get("/sources") for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in answers[:3]] == ["2", "1", "0"]
        assert answers[0].headers["x-ratelimit-limit"] == "3"
        limited = _is_problem(answers[3], 429)
        assert int(answers[3].headers["retry-after"]) >= 1
        assert limited["reason"] == "RATE_LIMITED"
    finally:
        server.should_exit = True
        await task


async def test_overview_counts_the_tenant(stack, client: httpx.AsyncClient) -> None:
    job_type = unique("jt")
    source = await create_source(client)
    await create_run(client, source["id"], job_type)
    (assignment,) = await claim(stack, job_type)
    await complete(stack, job_type, assignment)
    overview = (await client.get("/overview", params={"window_s": 600})).json()
    assert overview["queue_depth"] == (
        overview["jobs_by_state"]["pending"] + overview["jobs_by_state"]["ready"]
    )
    assert overview["succeeded_in_window"] >= 1
    assert overview["throughput_per_minute"] == pytest.approx(overview["succeeded_in_window"] / 10)
    assert overview["window"] == 600
    assert 0 <= overview["failure_rate"] <= 1
    assert overview["slo_target"] == 0.99


async def test_audit_lists_the_operator_actions_of_the_tenant(client: httpx.AsyncClient) -> None:
    source = await create_source(client)
    paused = await client.post(f"/sources/{source['id']}/pause", headers=REASON)
    assert paused.status_code == 200, paused.text
    resp = await client.get("/audit", params={"page_size": 500})
    assert resp.status_code == 200, resp.text
    entries = resp.json()["items"]
    assert any(e["target"] == f"sources/{source['id']}" for e in entries)
    assert all(e["tenant"] == entries[0]["tenant"] for e in entries)


async def test_audit_answers_503_problem_while_the_audit_service_is_down(stack) -> None:
    import uvicorn

    from orchestrator_gateway import create_app

    settings = stack.gateway_settings(audit_target="127.0.0.1:1")  # nothing listens there
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}/api/v1/orchestrator",
            headers={"authorization": f"Bearer {stack.token()}"},
        ) as client:
            body = _is_problem(await client.get("/audit"), 503)
        assert body["grpc_status"] == "UNAVAILABLE"
    finally:
        server.should_exit = True
        await task


async def test_openapi_document_is_3_1(anon: httpx.AsyncClient, stack) -> None:
    resp = await anon.get(f"{stack.base_url}/.well-known/openapi")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"].startswith("3.1")
    assert "/api/v1/orchestrator/deadletter/{entry_id}/replay" in doc["paths"]
    assert "Problem" in doc["components"]["schemas"]


async def test_schedules_crud(client: httpx.AsyncClient) -> None:
    source = await create_source(client)
    body = {
        "name": unique("sched"),
        "cron": "0 */6 * * *",
        "source_id": source["id"],
        "run_template": {
            "name": "nvd {fire_time}",
            "jobs": [{"key": "fetch", "job_type": "ingest.nvd", "source_id": source["id"]}],
        },
        "catch_up": "skip",
        "overlap": "buffer_one",
        "enabled": False,
    }
    created = await client.post("/schedules", json=body)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["catch_up"] == "skip"
    assert schedule["overlap"] == "buffer_one"
    assert schedule["run_template"]["jobs"][0]["key"] == "fetch"
    assert (await client.get(f"/schedules/{schedule['id']}")).json() == schedule
    listed = (await client.get("/schedules", params={"enabled": "false"})).json()["items"]
    assert schedule["id"] in [s["id"] for s in listed]
    enabled = await client.patch(f"/schedules/{schedule['id']}", json={"enabled": True})
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["enabled"] is True
    assert enabled.json()["next_fire_at"] is not None
    bad = await client.post("/schedules", json={**body, "name": unique("s"), "cron": "nope"})
    assert _is_problem(bad, 400)["grpc_status"] == "INVALID_ARGUMENT"
    gone = await client.delete(f"/schedules/{schedule['id']}", headers=REASON)
    assert gone.status_code == 204
    _is_problem(await client.get(f"/schedules/{schedule['id']}"), 404)


async def test_backfill_needs_its_scope_and_a_ticket_then_previews_and_runs(
    stack, client: httpx.AsyncClient
) -> None:
    source = await create_source(client)
    body = {
        "source_id": source["id"],
        "job_type": unique("bf"),
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-01T06:00:00Z",
        "window_size_s": 3600,
    }
    denied = await client.post("/backfills", json=body, headers=REASON)
    assert _is_problem(denied, 403)["required_scope"] == "orch:backfill"
    scoped = stack.headers(("orch:read", "orch:backfill"))
    no_ticket = await client.post(
        "/backfills", json=body, headers={**scoped, "X-Stella-Operator-Reason": "NVD outage"}
    )
    assert _is_problem(no_ticket, 400)["grpc_status"] == "INVALID_ARGUMENT"
    preview = await client.post(
        "/backfills", json={**body, "dry_run": True}, headers={**scoped, **REASON}
    )
    assert preview.status_code == 201, preview.text
    assert preview.json()["preview"]["window_count"] == 6
    created = await client.post("/backfills", json=body, headers={**scoped, **REASON})
    assert created.status_code == 201, created.text
    backfill = created.json()["backfill"]
    assert backfill["window_count"] == 6
    assert backfill["ticket"] == "OPS-1"
    assert (await client.get(f"/backfills/{backfill['id']}")).json()["id"] == backfill["id"]
    listed = (await client.get("/backfills", params={"source_id": source["id"]})).json()
    assert [b["id"] for b in listed["items"]] == [backfill["id"]]
    canceled = await client.post(
        f"/backfills/{backfill['id']}/cancel", headers={**scoped, **REASON}
    )
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["state"] == "canceled"
    watermarks = await client.get("/watermarks", params={"source_id": source["id"]})
    assert watermarks.status_code == 200


async def test_prioritize_replay_and_pause_jobs(stack, client: httpx.AsyncClient) -> None:
    job_type = unique("jt")
    source = await create_source(client)
    run = (await create_run(client, source["id"], job_type))["run"]
    changed = await client.post(
        f"/runs/{run['id']}/prioritize", json={"priority": 50}, headers=REASON
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["changed_jobs"] == 3
    jobs = (await client.get("/jobs", params={"run_id": run["id"]})).json()["items"]
    assert {j["priority"] for j in jobs} == {50}
    one = await client.post(
        f"/jobs/{jobs[0]['id']}/prioritize", json={"priority": 7}, headers=REASON
    )
    assert one.json()["priority"] == 7

    paused = await client.post("/jobs/pause", json={"job_type": job_type}, headers=REASON)
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    resumed = await client.post("/jobs/resume", json={"job_type": job_type}, headers=REASON)
    assert resumed.json()["paused"] is False

    (assignment,) = await claim(stack, job_type)
    await complete(stack, job_type, assignment)
    replay = await client.post(f"/jobs/{assignment.job_id}/replay", headers=REASON)
    assert replay.status_code == 200, replay.text
    assert replay.json()["replay_of"] == assignment.job_id
    assert replay.json()["state"] == "ready"
    dead = await make_dead_job(client, stack)
    refused = await client.post(f"/jobs/{dead['job']['id']}/replay", headers=REASON)
    assert _is_problem(refused, 409)["reason"] == "JOB_NOT_SUCCEEDED"
