"""Live event feeds over real HTTP: SSE resume with Last-Event-ID, WebSocket, slow clients."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.gateway._helpers import claim, complete, create_source, unique

pytestmark = pytest.mark.integration


async def sse_events(resp: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parse a text/event-stream: yields {"id", "event", "data"} and {"comment"} items."""
    fields: dict[str, str] = {}
    async for line in resp.aiter_lines():
        if line == "":
            if "data" in fields:
                yield {
                    "id": int(fields["id"]),
                    "event": fields["event"],
                    "data": json.loads(fields["data"]),
                }
            fields = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def _all_events(client: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token = ""
    while True:
        page = (
            await client.get(
                "/events", params={"run_id": run_id, "page_size": 500, "page_token": token}
            )
        ).json()
        out += page["items"]
        token = page["next_page_token"]
        if not page["items"] or not token:
            return out


async def _settled_events(
    client: httpx.AsyncClient, run_id: str, minimum: int
) -> list[dict[str, Any]]:
    """The run's events once at least ``minimum`` are readable and two reads agree (the
    history is served up to the commit horizon, which trails a commit by milliseconds)."""
    previous: list[dict[str, Any]] | None = None
    for _ in range(100):
        events = await _all_events(client, run_id)
        if len(events) >= minimum and events == previous:
            return events
        previous = events
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} history did not settle: {len(previous or [])} events")


async def _work(stack, job_type: str, total: int, workers: int = 4) -> None:
    """Claim and complete ``total`` jobs with a few concurrent workers."""
    done = 0

    async def one() -> None:
        nonlocal done
        while done < total:
            for assignment in await claim(stack, job_type, max_jobs=3):
                await complete(stack, job_type, assignment)
                done += 1

    await asyncio.gather(*(one() for _ in range(workers)))


async def test_sse_resume_with_last_event_id_gets_every_event_once_in_order(stack) -> None:
    jobs = 30
    job_type = unique("jt")
    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(), timeout=30) as c:
        source = await create_source(c)
        resp = await c.post(
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
        worker = asyncio.create_task(_work(stack, job_type, jobs))

        received: list[dict[str, Any]] = []
        keepalives = 0
        # First connection: from the start of the run's history; leave after 25 events.
        async with c.stream(
            "GET", "/events/stream", params={"run_id": run_id, "after_seq": 0}
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for item in sse_events(stream):
                if "id" in item:
                    received.append(item)
                    if len(received) == 25:
                        break
        # Meanwhile the workers keep going; resume from the last id.
        await asyncio.sleep(0.3)
        await worker
        truth = await _settled_events(c, run_id, 1 + 3 * jobs)
        async with c.stream(
            "GET",
            "/events/stream",
            params={"run_id": run_id},
            headers={"Last-Event-ID": str(received[-1]["id"])},
        ) as stream:
            async for item in sse_events(stream):
                if "comment" in item:
                    keepalives += item["comment"].startswith("keep-alive")
                    if keepalives >= 1 and received[-1]["id"] == truth[-1]["seq"]:
                        break
                    continue
                received.append(item)

    seqs = [e["id"] for e in received]
    assert seqs == [e["seq"] for e in truth], "every event exactly once, in order"
    assert len(seqs) == len(set(seqs))
    assert [e["event"] for e in received] == [e["type"] for e in truth]
    assert [e["data"] for e in received] == truth
    # 30 job.created + 30 job.leased + 30 job.succeeded at least.
    assert sum(e["event"] == "job.succeeded" for e in received) == jobs
    assert keepalives >= 1


@pytest.mark.parametrize("jobs", [40, 97])
async def test_live_sse_during_a_burn_down_misses_nothing(stack, jobs: int) -> None:
    """Read live while workers complete jobs concurrently (the horizon then runs among open
    writers): every event of the run arrives once, in seq order, as the history has it. Two
    clients of the same filter share one upstream stream; both see everything."""
    job_type = unique("jt")
    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(), timeout=60) as c:
        source = await create_source(c)
        resp = await c.post(
            "/runs",
            json={
                "jobs": [
                    {"key": f"k{i}", "job_type": job_type, "source_id": source["id"]}
                    for i in range(jobs)
                ],
            },
        )
        run_id = resp.json()["run"]["id"]
        expected = 1 + 3 * jobs  # run.created (or similar) aside: created, leased, succeeded

        async def read_live() -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = []
            async with c.stream(
                "GET", "/events/stream", params={"run_id": run_id, "after_seq": 0}
            ) as stream:
                async for item in sse_events(stream):
                    if "id" in item:
                        got.append(item)
                        succeeded = sum(e["event"] == "job.succeeded" for e in got)
                        if succeeded == jobs and got[-1]["event"].startswith("run."):
                            return got
            raise AssertionError("stream ended")

        readers = [asyncio.create_task(read_live()) for _ in range(2)]
        await asyncio.sleep(0.2)
        await _work(stack, job_type, jobs, workers=6)
        async with asyncio.timeout(120):
            streams = await asyncio.gather(*readers)
        truth = await _settled_events(c, run_id, expected)
    want = [e["seq"] for e in truth if e["seq"] <= streams[0][-1]["id"]]
    for got in streams:
        assert [e["id"] for e in got] == want, "every event exactly once, in order"
        assert [e["data"] for e in got] == truth[: len(want)]


async def test_sse_needs_read_scope_and_valid_last_event_id(stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api, timeout=10) as c:
        assert (await c.get("/events/stream")).status_code == 401
        bad = await c.get(
            "/events/stream", headers={**stack.headers(), "Last-Event-ID": "not-a-number"}
        )
        assert bad.status_code == 400
        assert bad.headers["content-type"].startswith("application/problem+json")
        wrong = await c.get("/events/stream", params={"run_id": "nope"}, headers=stack.headers())
        assert wrong.status_code == 400
        assert wrong.json()["errors"][0]["field"] == "run_id"


async def test_sse_is_filtered_by_tenant(stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(), timeout=30) as c:
        other = stack.headers(tenant=stack.other_tenant)
        async with (
            c.stream("GET", "/events/stream") as mine,
            c.stream("GET", "/events/stream", headers=other) as theirs,
        ):
            source = await create_source(c)
            async for item in sse_events(mine):
                if item.get("data", {}).get("source_id") == source["id"]:
                    break
            seen: list[dict[str, Any]] = []
            keepalives = 0
            async for item in sse_events(theirs):
                if "id" in item:
                    seen.append(item)
                elif item["comment"].startswith("keep-alive"):
                    keepalives += 1
                    if keepalives == 2:  # idle twice after our event was delivered
                        break
        assert seen == []


async def test_websocket_feed_resumes_with_after_seq(stack) -> None:
    import websockets

    job_type = unique("jt")
    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(), timeout=30) as c:
        source = await create_source(c)
        run = (
            await c.post(
                "/runs",
                json={
                    "jobs": [
                        {"key": f"k{i}", "job_type": job_type, "source_id": source["id"]}
                        for i in range(5)
                    ]
                },
            )
        ).json()["run"]
        truth = await _settled_events(c, run["id"], 6)
    url = stack.api.replace("http://", "ws://") + f"/events/ws?run_id={run['id']}&after_seq=0"
    received: list[dict[str, Any]] = []
    async with websockets.connect(url, subprotocols=["bearer", stack.token()]) as ws:
        first = json.loads(await ws.recv())
        assert first["keep_alive"] is True
        while len(received) < 3:
            message = json.loads(await ws.recv())
            if not message.get("keep_alive"):
                received.append(message)
    resume = stack.api.replace("http://", "ws://") + (
        f"/events/ws?run_id={run['id']}&after_seq={received[-1]['seq']}"
    )
    async with websockets.connect(
        resume, additional_headers={"Authorization": f"Bearer {stack.token()}"}
    ) as ws:
        while len(received) < len(truth):
            async with asyncio.timeout(30):
                message = json.loads(await ws.recv())
            if not message.get("keep_alive"):
                received.append(message)
    assert received == truth


async def test_slow_sse_client_is_cut_not_the_server(stack) -> None:
    """A client that never reads fills its bounded buffer and is disconnected; the gateway
    keeps serving everyone else."""
    import uvicorn

    from orchestrator_gateway import create_app

    settings = stack.gateway_settings(stream_buffer=2)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="critical")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        request = (
            f"GET /api/v1/orchestrator/events/stream HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {stack.token()}\r\n\r\n"
        ).encode()
        await loop.sock_sendall(sock, request)
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}/api/v1/orchestrator",
            headers=stack.headers(),
            timeout=30,
        ) as c:
            source = await create_source(c)
            job_type = unique("jt")
            # ~12,000 events (~8 MB of stream): more than loopback socket buffers absorb
            # (up to ~4 MB each way), so the server's writes block and its buffer fills.
            for _ in range(12):
                resp = await c.post(
                    "/runs",
                    json={
                        "jobs": [
                            {
                                "key": f"k{i}",
                                "job_type": job_type,
                                "source_id": source["id"],
                                "payload": {"pad": "x" * 200},
                            }
                            for i in range(1000)
                        ]
                    },
                )
                assert resp.status_code == 201
            # The server cuts the stream: reading now drains what was buffered, then EOF.
            total = 0
            deadline = loop.time() + 60
            while loop.time() < deadline:
                async with asyncio.timeout(30):
                    chunk = await loop.sock_recv(sock, 65536)
                if not chunk:
                    break
                total += len(chunk)
            else:
                pytest.fail("the slow client was not disconnected")
            assert total < 12_000 * 500, "the client was cut before receiving everything"
            # Everyone else is still served.
            assert (await c.get("/whoami")).status_code == 200
    finally:
        sock.close()
        server.should_exit = True
        await task


async def test_an_event_committed_late_is_not_skipped(stack) -> None:
    """seq comes from a sequence: a transaction holding a lower seq can commit after one with
    a higher seq. The stream holds the higher one back until the lower one is final, so a
    reader never moves past an event that is still to appear."""
    import psycopg

    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(), timeout=30) as c:
        early = await create_source(c)
        async with c.stream("GET", "/events/stream") as stream:
            items = sse_events(stream)
            assert "comment" in await anext(items)  # open
            slow = await psycopg.AsyncConnection.connect(stack.database_url)
            try:
                # The slow transaction draws its seq first and stays open...
                await slow.execute(
                    'UPDATE orchestrator.sources SET labels = \'{"late": "1"}\','
                    " version = version + 1 WHERE id = %s",
                    (early["id"],),
                )
                # ...while a later one commits a higher seq.
                late = await create_source(c)

                ours = {early["id"], late["id"]}

                async def next_event() -> dict[str, Any]:
                    # only the two sources' events: the shared stack's earlier tests may
                    # still emit events of this tenant (a lease expiring, a run settling)
                    async for item in items:
                        if "id" in item and item["data"].get("source_id") in ours:
                            return item
                    raise AssertionError("stream ended")

                pending = asyncio.ensure_future(next_event())
                done, _ = await asyncio.wait({pending}, timeout=1.5)
                assert not done, "the stream went past a seq still held by an open transaction"
                await slow.commit()
                async with asyncio.timeout(30):
                    first = await pending
                async with asyncio.timeout(30):
                    second = await next_event()
            finally:
                await slow.close()
    assert first["data"]["source_id"] == early["id"]
    assert first["event"] == "source.updated"
    assert second["data"]["source_id"] == late["id"]
    assert second["event"] == "source.created"
    assert first["id"] < second["id"]
