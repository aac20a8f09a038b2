"""Seeding helpers for gateway tests: data through the REST API, worker actions over gRPC."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import httpx

from stella.orchestrator.v1 import common_pb2, leases_pb2, leases_pb2_grpc

REASON = {
    "X-Stella-Operator-Reason": "test: exercising the control",
    "X-Stella-Operator-Ticket": "OPS-1",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_source(client: httpx.AsyncClient, host: str | None = None) -> dict[str, Any]:
    name = unique("src")
    resp = await client.post(
        "/sources",
        json={"name": name, "source_type": "nvd", "host": host or f"{name}.example.org"},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def create_run(
    client: httpx.AsyncClient, source_id: str, job_type: str, *, chain: int = 3
) -> dict[str, Any]:
    """A run whose jobs form a chain a -> b -> c (only the first is ready)."""
    keys = [f"j{i}" for i in range(chain)]
    jobs = [
        {
            "key": key,
            "job_type": job_type,
            "source_id": source_id,
            "payload": {"n": i},
            "depends_on": [keys[i - 1]] if i else [],
            "max_attempts": 1,
        }
        for i, key in enumerate(keys)
    ]
    resp = await client.post("/runs", json={"name": unique("run"), "jobs": jobs})
    assert resp.status_code == 201, resp.text
    return resp.json()


def worker_metadata(stack: Any, job_type: str) -> tuple[tuple[str, str], ...]:
    from orchestrator_grpckit import mint_dev_token
    from tests.conftest import DEV_SECRET

    token = mint_dev_token(DEV_SECRET, "worker-test", [stack.tenant], ["orch:work"], [job_type])
    return (("authorization", f"Bearer {token}"),)


async def claim(stack: Any, job_type: str, max_jobs: int = 1) -> list[leases_pb2.Assignment]:
    async with grpc.aio.insecure_channel(stack.leases) as channel:
        stub = leases_pb2_grpc.LeaseServiceStub(channel)
        req = leases_pb2.ClaimRequest(worker_id="w-test", job_types=[job_type], max_jobs=max_jobs)
        req.wait.FromSeconds(5)
        resp = await stub.Claim(req, metadata=worker_metadata(stack, job_type))
        return list(resp.assignments)


async def complete(stack: Any, job_type: str, assignment: leases_pb2.Assignment) -> None:
    async with grpc.aio.insecure_channel(stack.leases) as channel:
        stub = leases_pb2_grpc.LeaseServiceStub(channel)
        await stub.Complete(
            leases_pb2.CompleteRequest(
                completions=[
                    leases_pb2.Completion(job_id=assignment.job_id, lease_id=assignment.lease_id)
                ]
            ),
            metadata=worker_metadata(stack, job_type),
        )


async def fail(
    stack: Any,
    job_type: str,
    assignment: leases_pb2.Assignment,
    *,
    message: str = "boom",
    error_class: int = common_pb2.ERROR_CLASS_SCHEMA_MISMATCH,
) -> None:
    async with grpc.aio.insecure_channel(stack.leases) as channel:
        stub = leases_pb2_grpc.LeaseServiceStub(channel)
        await stub.Fail(
            leases_pb2.FailRequest(
                failures=[
                    leases_pb2.Failure(
                        job_id=assignment.job_id,
                        lease_id=assignment.lease_id,
                        error=common_pb2.JobError(
                            error_class=error_class,
                            message=message,
                            retryable=False,
                        ),
                    )
                ]
            ),
            metadata=worker_metadata(stack, job_type),
        )


async def make_dead_job(client: httpx.AsyncClient, stack: Any) -> dict[str, Any]:
    """A standalone job that a worker failed non-retryably: it is dead-lettered."""
    job_type = unique("jt")
    source = await create_source(client)
    resp = await client.post(
        "/jobs", json={"job": {"job_type": job_type, "source_id": source["id"], "max_attempts": 1}}
    )
    assert resp.status_code == 201, resp.text
    job = resp.json()["job"]
    (assignment,) = await claim(stack, job_type)
    assert assignment.job_id == job["id"]
    await fail(stack, job_type, assignment)
    return {"job": job, "job_type": job_type, "source": source}


async def make_incident(client: httpx.AsyncClient, stack: Any, failures: int = 5) -> dict[str, Any]:
    """``failures`` jobs of one type and source that each fail once, for good, with an
    upstream 5xx: the cluster crosses the default threshold (5 within 5 minutes), so the
    scheduler's incident pass opens an incident. Returns the job type, source and job ids."""
    job_type = unique("jt")
    source = await create_source(client)
    ids = []
    for _ in range(failures):
        resp = await client.post(
            "/jobs",
            json={"job": {"job_type": job_type, "source_id": source["id"], "max_attempts": 1}},
        )
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["job"]["id"])
    assignments: list[leases_pb2.Assignment] = []
    while len(assignments) < failures:  # a claim may hand out fewer than asked
        assignments += await claim(stack, job_type, max_jobs=failures - len(assignments))
    assert sorted(a.job_id for a in assignments) == sorted(ids)
    for assignment in assignments:
        await fail(stack, job_type, assignment, error_class=common_pb2.ERROR_CLASS_HTTP_5XX)
    return {"job_type": job_type, "source": source, "job_ids": ids}


async def wait_for_incident(client: httpx.AsyncClient, job_type: str) -> dict[str, Any]:
    """The incident of ``job_type`` once the incident pass opened it (polls up to 90 s)."""
    deadline = asyncio.get_running_loop().time() + 90.0
    delay = 0.05
    while True:
        resp = await client.get("/incidents", params={"page_size": 500})
        assert resp.status_code == 200, resp.text
        found = [i for i in resp.json()["items"] if i["job_type"] == job_type]
        if found:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, f"no incident for {job_type}"
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


CLI_SCOPES = ("orch:read", "orch:operate", "orch:quota")


def seed(stack: Any, make: Any) -> Any:
    """Runs ``await make(client)`` with a REST client of the stack (all CLI scopes), from
    synchronous code such as a CLI test; returns its result."""

    async def run() -> Any:
        async with httpx.AsyncClient(base_url=stack.api, headers=stack.headers(CLI_SCOPES)) as c:
            return await make(c)

    return asyncio.run(run())


def cli(
    stack: Any,
    capsys: Any,
    *argv: str,
    scopes: tuple[str, ...] = CLI_SCOPES,
    token: str | None = None,
) -> tuple[int, str, str]:
    """Runs ``stella orchestrator ARGV`` against the stack; returns (exit code, stdout, stderr)."""
    from stella_orchestrator.cli import main

    capsys.readouterr()
    code = main(
        [
            "orchestrator",
            *argv,
            "--api-url",
            stack.base_url,
            "--token",
            token if token is not None else stack.token(scopes),
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err
