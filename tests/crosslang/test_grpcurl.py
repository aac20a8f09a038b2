"""grpcurl against the running leases service through server reflection: list the services,
describe a method, and lease + complete a job with the unary Claim/Complete RPCs. These are
the commands the README shows; grpcurl is installed at its pinned version by `make grpcurl`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path

import grpc
import psycopg
import pytest

from stella.orchestrator.v1 import resources_pb2, scheduler_pb2
from tests.conftest import Stub
from tests.crosslang.conftest import CACHE, ROOT, build_env

pytestmark = [pytest.mark.integration]
GRPCURL = CACHE / "bin" / "grpcurl"


@pytest.fixture(scope="session")
def grpcurl_bin() -> Path:
    subprocess.run(["make", "-s", "grpcurl"], cwd=ROOT, env=build_env(), check=True, timeout=900)
    assert GRPCURL.is_file()
    return GRPCURL


async def _grpcurl(binary: Path, *args: str) -> str:
    # The service runs in this event loop: never block it with subprocess.run.
    proc = await asyncio.create_subprocess_exec(
        str(binary), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"grpcurl {' '.join(args)} failed: {err.decode()}"
    return out.decode()


async def test_grpcurl_lists_describes_and_claims_through_reflection(
    grpcurl_bin: Path, leases_target: str, channel: grpc.aio.Channel, make_token, database_url: str
) -> None:
    listed = await _grpcurl(grpcurl_bin, "-plaintext", leases_target, "list")
    assert "stella.orchestrator.v1.LeaseService" in listed.split()
    assert "grpc.health.v1.Health" in listed.split()

    # grpcio-reflection resolves services and messages but not "Service.Method" symbols, so
    # the method is described through its service (which prints every RPC's signature) and
    # its request message.
    described = await _grpcurl(
        grpcurl_bin, "-plaintext", leases_target, "describe", "stella.orchestrator.v1.LeaseService"
    )
    assert (
        "rpc Claim ( .stella.orchestrator.v1.ClaimRequest )"
        " returns ( .stella.orchestrator.v1.ClaimResponse );" in described
    )
    request = await _grpcurl(
        grpcurl_bin, "-plaintext", leases_target, "describe", "stella.orchestrator.v1.ClaimRequest"
    )
    assert "int32 max_jobs = 3;" in request
    assert ".google.protobuf.Duration wait = 4;" in request

    job_type = f"grpcurl{uuid.uuid4().hex[:8]}.ping"
    operator = Stub(channel, make_token("acme"))
    created = await operator.CreateRun(
        scheduler_pb2.CreateRunRequest(
            name="grpcurl", jobs=[resources_pb2.JobSpec(key="only", job_type=job_type)]
        )
    )
    job_id = created.jobs[0].id
    auth = f"authorization: Bearer {make_token('acme', ('orch:work',), subject='grpcurl')}"
    claim = json.dumps(
        {"worker_id": "grpcurl", "job_types": [job_type], "max_jobs": 1, "wait": "5s"}
    )
    claimed = json.loads(
        await _grpcurl(
            grpcurl_bin,
            "-plaintext",
            "-H",
            auth,
            "-d",
            claim,
            leases_target,
            "stella.orchestrator.v1.LeaseService/Claim",
        )
    )
    (assignment,) = claimed["assignments"]
    # grpcurl prints the proto field names.
    assert assignment["job_id"] == job_id
    assert assignment["job_type"] == job_type
    assert assignment["lease_id"]
    assert assignment["attempt"] == 1

    complete = json.dumps(
        {
            "completions": [
                {"job_id": job_id, "lease_id": assignment["lease_id"], "result": {"via": "grpcurl"}}
            ]
        }
    )
    completed = json.loads(
        await _grpcurl(
            grpcurl_bin,
            "-plaintext",
            "-H",
            auth,
            "-d",
            complete,
            leases_target,
            "stella.orchestrator.v1.LeaseService/Complete",
        )
    )
    assert completed["acks"][0]["ok"] is True
    with psycopg.connect(database_url, autocommit=True) as db:
        state, result = db.execute(
            "SELECT state, result FROM orchestrator.jobs WHERE id = %s", (job_id,)
        ).fetchone()
    assert (state, result) == ("succeeded", {"via": "grpcurl"})
