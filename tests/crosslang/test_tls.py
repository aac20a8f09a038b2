"""Workers of every SDK complete jobs over TLS against a test CA (issue 16, item 4).

The leases service of this module serves TLS only (ORCH_TLS_CERT_FILE/KEY_FILE: a server
certificate for localhost and 127.0.0.1 signed by a CA made at test time); a Python, a Go
and a Rust worker each get the CA as ``STELLA_TLS_CA_FILE`` (their one documented TLS
option: ``tls_ca_file`` / ``WithTLSCAFile`` / ``tls_ca_file``) and must finish a run. A
plaintext worker and one trusting another CA must not get a single job.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import psycopg
import pytest

from stella.orchestrator.v1 import resources_pb2, scheduler_pb2
from stella_orchestrator.worker import Job, RPCError, Worker
from tests._certs import Pki, make_pki
from tests.conftest import Stub, service_config
from tests.crosslang.test_crosslang import _check_jobs, _run_state, _wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]
SDKS = ("python", "go", "rust")
JOBS_PER_SDK = 8
RUN_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
async def leases_target(
    database_url: str, tenants: tuple[str, str], pki: Pki
) -> AsyncIterator[str]:
    """Overrides the session's plaintext leases service for this module: the same service,
    TLS only. ``launch`` (tests/crosslang/conftest.py) starts workers against it."""
    from dataclasses import replace

    from orchestrator_leases import build_service

    config = replace(
        service_config("leases", database_url),
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
    )
    async with build_service(config) as service:
        await service.start()
        try:
            yield f"127.0.0.1:{service.port}"
        finally:
            await service.stop()


async def _submit(channel: grpc.aio.Channel, make_token, job_type: str) -> str:
    operator = Stub(channel, make_token("acme"))
    created = await operator.CreateRun(
        scheduler_pb2.CreateRunRequest(
            name=f"tls-{job_type}",
            jobs=[
                resources_pb2.JobSpec(key=f"k{i}", job_type=job_type) for i in range(JOBS_PER_SDK)
            ],
        )
    )
    return str(created.run.id)


@pytest.mark.parametrize("sdk", SDKS)
async def test_each_sdk_completes_jobs_over_tls(
    sdk: str,
    pki: Pki,
    channel: grpc.aio.Channel,
    make_token,
    launch,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_type = f"tls{uuid.uuid4().hex[:8]}.{sdk}"
    run_id = await _submit(channel, make_token, job_type)
    monkeypatch.setenv("STELLA_TLS_CA_FILE", str(pki.ca))
    launch(sdk, f"tls-{sdk}-{uuid.uuid4().hex[:6]}", [job_type])
    with psycopg.connect(database_url, autocommit=True) as db:
        await _wait_for(
            lambda: _run_state(db, run_id) in ("succeeded", "failed", "canceled"),
            RUN_TIMEOUT_S,
            f"the {sdk} worker to finish the run over TLS",
        )
        assert _run_state(db, run_id) == "succeeded"
        _check_jobs(db, run_id, {job_type: sdk})


@pytest.mark.parametrize("trust", ["plaintext", "other-ca"])
async def test_a_worker_that_does_not_trust_the_server_gets_nothing(
    trust: str, pki: Pki, leases_target: str, channel: grpc.aio.Channel, make_token
) -> None:
    job_type = f"tls{uuid.uuid4().hex[:8]}.refused"
    await _submit(channel, make_token, job_type)
    handled: list[str] = []

    async def handle(job: Job) -> dict[str, str]:
        handled.append(job.id)
        return {}

    worker = Worker(
        leases_target,
        token=make_token("acme", ("orch:work",), subject="tls-refused"),
        tls_ca_file=None if trust == "plaintext" else pki.other_ca,
        max_reconnect_attempts=3,
    )
    worker.add_handler(job_type, handle)
    with pytest.raises(RPCError) as failed:
        await worker.run()
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE
    # The same token as the TLS workers above: only the trust differs.
    assert handled == []
    assert worker.stats.assigned == 0
