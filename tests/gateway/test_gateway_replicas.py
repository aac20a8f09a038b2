"""Two gateway replicas in front of one stack: what they must share, they share.

Each test starts two more gateway applications (real uvicorn servers on their own ports) over
the stack's services, PostgreSQL and Redis, and spreads its requests over both: an
``Idempotency-Key`` runs once whichever replica gets it, a caller's rate limit is one bucket
however many replicas serve it, and a live feed resumes on a replica other than the one that
started it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest

from tests.gateway._helpers import create_source, unique
from tests.gateway.test_gateway_streams import _settled_events, _work, sse_events

pytestmark = pytest.mark.integration

API_PATH = "/api/v1/orchestrator"


@asynccontextmanager
async def gateway_replica(settings: Any) -> AsyncIterator[str]:
    """A gateway app served on a free port in this event loop; yields its API base URL."""
    import uvicorn

    from orchestrator_gateway import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            ws="websockets-sansio",
        )
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(60):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}{API_PATH}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def two_replicas(stack: Any, **overrides: Any) -> AsyncIterator[list[str]]:
    async with AsyncExitStack() as exits:
        yield [
            await exits.enter_async_context(gateway_replica(stack.gateway_settings(**overrides)))
            for _ in range(2)
        ]


async def test_one_idempotency_key_posted_50_times_over_two_replicas_makes_one_job(
    stack,
) -> None:
    job_type = unique("idem-jt")
    # No job-level idempotency key: only the gateway's Idempotency-Key stands between these
    # 50 requests and 50 jobs.
    body = json.dumps({"job": {"job_type": job_type, "payload": {"n": 1}}}).encode()
    headers = {
        **stack.headers(),
        "Idempotency-Key": unique("key"),
        "Content-Type": "application/json",
    }
    async with two_replicas(stack) as replicas:
        clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in replicas]
        try:
            answers = await asyncio.gather(
                *(clients[i % 2].post("/jobs", content=body, headers=headers) for i in range(50))
            )
            # Later repeats, on either replica, replay the same answer.
            later = [await c.post("/jobs", content=body, headers=headers) for c in clients]
            other = await clients[1].post(
                "/jobs",
                json={"job": {"job_type": job_type, "payload": {"n": 2}}},
                headers={k: v for k, v in headers.items() if k != "Content-Type"},
            )
        finally:
            for c in clients:
                await c.aclose()

    assert [a.status_code for a in answers] == [201] * 50, [a.text for a in answers]
    bodies = {a.content for a in answers + later}
    assert len(bodies) == 1, "every answer is the first answer"
    replayed = [a.headers.get("idempotent-replayed") == "true" for a in answers]
    assert replayed.count(False) == 1, "exactly one request ran"
    assert all(a.headers["idempotent-replayed"] == "true" for a in later)
    job_id = answers[0].json()["job"]["id"]
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        jobs = conn.execute(
            "SELECT id::text FROM orchestrator.jobs WHERE tenant = %s AND job_type = %s",
            (stack.tenant, job_type),
        ).fetchall()
    assert jobs == [(job_id,)]
    assert other.status_code == 422, other.text
    assert other.json()["reason"] == "IDEMPOTENCY_KEY_REUSED"


async def test_a_callers_rate_limit_holds_across_two_replicas(stack) -> None:
    burst = 10
    # A refill this slow adds no token while the test runs, however loaded the machine.
    settings = {
        "rate_per_s": 0.0001,
        "rate_burst": burst,
        "ratelimit_key_prefix": f"{stack.redis_prefix}{unique('rl')}:",
    }
    async with two_replicas(stack, **settings) as replicas:
        clients = [httpx.AsyncClient(base_url=url, headers=stack.headers()) for url in replicas]
        stranger = httpx.AsyncClient(
            base_url=replicas[0], headers=stack.headers(subject="someone-else")
        )
        try:
            answers = [await clients[i % 2].get("/whoami") for i in range(3 * burst)]
            unaffected = await stranger.get("/whoami")
        finally:
            for c in [*clients, stranger]:
                await c.aclose()

    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == burst, statuses  # one bucket, not one per replica
    assert statuses == [200] * burst + [429] * (2 * burst)
    remaining = [int(a.headers["x-ratelimit-remaining"]) for a in answers[:burst]]
    assert remaining == list(range(burst - 1, -1, -1))
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers[burst:])
    assert answers[-1].json()["reason"] == "RATE_LIMITED"
    assert unaffected.status_code == 200, "another caller has a bucket of its own"


async def test_rate_limit_fails_open_while_redis_is_unreachable(stack) -> None:
    from prometheus_client import REGISTRY

    def bypassed() -> float:
        return REGISTRY.get_sample_value("orchestrator_gateway_ratelimit_bypassed_total") or 0.0

    before = bypassed()
    # Nothing listens on port 1: every Redis call fails at once.
    settings = stack.gateway_settings(rate_burst=1, redis_url="redis://127.0.0.1:1/0")
    async with gateway_replica(settings) as url:
        async with httpx.AsyncClient(base_url=url, headers=stack.headers()) as c:
            answers = [await c.get("/whoami") for _ in range(5)]
        assert REGISTRY.get_sample_value("orchestrator_gateway_ratelimit_redis_up") == 0.0
    assert [a.status_code for a in answers] == [200] * 5
    assert not any("x-ratelimit-limit" in a.headers for a in answers)
    assert bypassed() - before == 5


async def test_sse_and_websocket_feeds_resume_on_the_other_replica(stack) -> None:
    import websockets

    jobs = 12
    job_type = unique("jt")
    async with two_replicas(stack) as (first, second):
        async with (
            httpx.AsyncClient(base_url=first, headers=stack.headers(), timeout=30) as a,
            httpx.AsyncClient(base_url=second, headers=stack.headers(), timeout=30) as b,
        ):
            source = await create_source(a)
            resp = await a.post(
                "/runs",
                json={
                    "name": unique("run"),
                    "jobs": [
                        {"key": f"k{i}", "job_type": job_type, "source_id": source["id"]}
                        for i in range(jobs)
                    ],
                },
            )
            run_id = resp.json()["run"]["id"]
            await _work(stack, job_type, jobs)
            truth = await _settled_events(a, run_id, 1 + 3 * jobs)

            # SSE: start on the first replica, resume on the second with Last-Event-ID.
            received: list[dict[str, Any]] = []
            async with a.stream(
                "GET", "/events/stream", params={"run_id": run_id, "after_seq": 0}
            ) as stream:
                async for item in sse_events(stream):
                    if "id" in item:
                        received.append(item)
                        if len(received) == 10:
                            break
            async with (
                asyncio.timeout(60),
                b.stream(
                    "GET",
                    "/events/stream",
                    params={"run_id": run_id},
                    headers={"Last-Event-ID": str(received[-1]["id"])},
                ) as stream,
            ):
                async for item in sse_events(stream):
                    if "id" in item:
                        received.append(item)
                        if len(received) == len(truth):
                            break
            assert [e["id"] for e in received] == [e["seq"] for e in truth]
            assert [e["data"] for e in received] == truth

        # WebSocket: the same, with ?after_seq= (the second replica first this time).
        ws_received: list[dict[str, Any]] = []
        token = stack.token()
        start = second.replace("http://", "ws://") + f"/events/ws?run_id={run_id}&after_seq=0"
        async with websockets.connect(start, subprotocols=["bearer", token]) as ws:
            async with asyncio.timeout(60):
                while len(ws_received) < 5:
                    message = json.loads(await ws.recv())
                    if not message.get("keep_alive"):
                        ws_received.append(message)
        resume = first.replace("http://", "ws://") + (
            f"/events/ws?run_id={run_id}&after_seq={ws_received[-1]['seq']}"
        )
        async with websockets.connect(resume, subprotocols=["bearer", token]) as ws:
            async with asyncio.timeout(60):
                while len(ws_received) < len(truth):
                    message = json.loads(await ws.recv())
                    if not message.get("keep_alive"):
                        ws_received.append(message)
    assert ws_received == truth


async def test_a_replica_without_postgresql_serves_but_refuses_to_record_keys(stack) -> None:
    """PostgreSQL unreachable: the replica starts and serves; a POST with Idempotency-Key is
    503 (it cannot promise a single run), never run unrecorded."""
    job_type = unique("nodb-jt")
    settings = stack.gateway_settings(database_url="postgresql://orchestrator@127.0.0.1:1/none")
    async with (
        gateway_replica(settings) as url,
        httpx.AsyncClient(base_url=url, headers=stack.headers(), timeout=60) as c,
    ):
        assert (await c.get("/whoami")).status_code == 200
        keyed = await c.post(
            "/jobs",
            json={"job": {"job_type": job_type}},
            headers={"Idempotency-Key": unique("key")},
        )
        plain = await c.post("/jobs", json={"job": {"job_type": job_type}})
    assert keyed.status_code == 503, keyed.text
    assert keyed.headers["content-type"].startswith("application/problem+json")
    assert keyed.json()["reason"] == "IDEMPOTENCY_STORE_UNAVAILABLE"
    assert int(keyed.headers["retry-after"]) >= 1
    assert plain.status_code == 201, plain.text
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM orchestrator.jobs WHERE tenant = %s AND job_type = %s",
            (stack.tenant, job_type),
        ).fetchone()
    assert count == 1, "only the request without a key ran"
