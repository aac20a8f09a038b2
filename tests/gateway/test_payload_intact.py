"""Inputs reach the worker exactly as submitted, over REST and over gRPC; a payload carrying a
live-looking credential is refused with the field named and nothing stored; reads (what a
person sees) redact credential-named fields while the worker's copy stays intact."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format, struct_pb2

from orchestrator_core import canonical_json
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2, scheduler_pb2_grpc
from tests.gateway._helpers import claim, create_source, unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(), timeout=30) as c:
        yield c


def _payload(rng: random.Random) -> dict[str, Any]:
    """Fields named like secrets that are data (cursors, counts, policies), and plain data."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    cursor = "".join(rng.choice(alphabet) for _ in range(rng.randint(8, 40)))
    return {
        "page_token": "eyJvZmZzZXQiOjEwMH0",
        "next_cursor": cursor,
        "nextPageToken": cursor[::-1],
        "token_count": rng.randint(0, 2**40),
        "password_policy": "min-length-12",
        "token": f"tok-{cursor}",  # ambiguous: stored and handed over as given, shown redacted
        "url": f"https://api.osv.dev/v1/query?page_token={cursor}",
        "auth": {"secretRef": "vault://kv/osv#token"},
        "nested": {"list": [1, 2.5, None, True, "ünïcødé ✓"], "empty": {}},
    }


def _digest(payload: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(payload)).hexdigest()


async def test_rest_and_grpc_payloads_reach_the_worker_unchanged(
    client: httpx.AsyncClient, stack
) -> None:
    rng = random.Random()
    job_type = unique("intact")
    source = await create_source(client)
    submitted = {}
    for _ in range(rng.randint(1, 3)):
        payload = _payload(rng)
        resp = await client.post(
            "/jobs",
            json={"job": {"job_type": job_type, "source_id": source["id"], "payload": payload}},
        )
        assert resp.status_code == 201, resp.text
        job = resp.json()["job"]
        assert job["payload_digest"] == _digest(payload)
        assert job["payload"]["token"] == "[REDACTED]"  # a read is a display
        assert job["payload"]["page_token"] == payload["page_token"]
        submitted[job["id"]] = payload

    payload = _payload(rng)
    body = struct_pb2.Struct()
    body.update(payload)
    async with grpc.aio.insecure_channel(stack.scheduler) as channel:
        reply = await scheduler_pb2_grpc.SchedulerServiceStub(channel).SubmitJobs(
            scheduler_pb2.SubmitJobsRequest(
                jobs=[
                    resources_pb2.JobSpec(job_type=job_type, source_id=source["id"], payload=body)
                ]
            ),
            metadata=(("authorization", f"Bearer {stack.token()}"),),
        )
    submitted[reply.jobs[0].id] = payload

    handed = {}
    while len(handed) < len(submitted):
        for assignment in await claim(stack, job_type, max_jobs=len(submitted)):
            handed[assignment.job_id] = assignment
    for job_id, payload in submitted.items():
        got = json_format.MessageToDict(handed[job_id].payload)
        assert got == payload
        assert canonical_json(got) == canonical_json(payload)
        assert handed[job_id].payload_digest == _digest(payload)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_key", "k-" + "7" * 20),
        ("headers", {"Authorization": "Bearer " + "x9" * 10}),
        ("callback", "https://svc:hunter22@feeds.example/hook"),
        ("note", "use ghp_" + "Ab1" * 12 + " for the mirror"),
    ],
)
async def test_live_credentials_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, field: str, value: Any
) -> None:
    job_type = unique("refused")
    source = await create_source(client)
    resp = await client.post(
        "/jobs",
        json={
            "job": {
                "job_type": job_type,
                "source_id": source["id"],
                "payload": {"page_token": "abc", field: value},
            }
        },
    )
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    errors = resp.json()["errors"]
    assert all(e["field"].startswith(f"job.payload.{field}") for e in errors), errors
    assert all("secretRef" in e["description"] for e in errors), errors
    listed = await client.get("/jobs", params={"job_type": job_type})
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []
