"""Secrets planted in every input path never come out: not in the ledger (any table, the
event history included), not in API responses, not in audit bundles, not in the logs.

Inputs: job payloads (headers, password/token/api-key fields, URLs with passwords), job and
source labels, a source base URL, worker failure and progress messages (through the lease
ledger, as the leases service writes them), and operator reasons and tickets. ``secretRef``
values are references, not secrets, and must survive.
"""

from __future__ import annotations

import io
import json
import logging
import random
import uuid
from datetime import UTC, datetime

import grpc
import psycopg
import pytest
from google.protobuf import struct_pb2

from orchestrator_audit import Signer, generate_private_pem
from orchestrator_core.redaction import redact_text
from orchestrator_grpckit import configure_logging
from orchestrator_pg import Database, Failure, LeaseLedger, ProgressUpdate, TxContext
from stella.orchestrator.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    common_pb2,
    resources_pb2,
    scheduler_pb2,
)
from tests.conftest import Stub, migrated_database, service_config

pytestmark = pytest.mark.integration

SECRETS = [f"PLANTED{i:02d}-{uuid.uuid4().hex[:10]}" for i in range(12)]
SECRET_REF = "vault://kv/feeds/nvd#token"
JOB_TYPE = "secrets.planted"


@pytest.fixture(scope="module")
def secrets_db(admin_url):
    with migrated_database(admin_url, "orch_secrets", tenants=("acme",)) as url:
        yield url


@pytest.fixture(scope="module")
def log_stream():
    stream = io.StringIO()
    configure_logging("DEBUG", service="secrets-test", stream=stream)
    yield stream
    root = logging.getLogger()
    for handler in [h for h in root.handlers if type(h).__name__ == "_JsonHandler"]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


@pytest.fixture(scope="module")
async def targets(secrets_db, log_stream):
    from orchestrator_audit import build_service as build_audit
    from orchestrator_scheduler import build_service as build_scheduler

    signer = Signer.from_pem(generate_private_pem())
    async with (
        build_scheduler(service_config("scheduler", secrets_db)) as scheduler,
        build_audit(service_config("audit", secrets_db), signer=signer) as audit,
    ):
        await scheduler.start()
        await audit.start()
        try:
            yield f"127.0.0.1:{scheduler.port}", f"127.0.0.1:{audit.port}"
        finally:
            await audit.stop()
            await scheduler.stop()


def _payload() -> struct_pb2.Struct:
    body = struct_pb2.Struct()
    body.update(
        {
            "url": f"https://svc:{SECRETS[0]}@feeds.example/cve",
            "headers": {"Authorization": f"Bearer {SECRETS[1]}", "Accept": "application/json"},
            "password": SECRETS[2],
            "api_key": SECRETS[3],
            "note": f"retry with token={SECRETS[4]}",
            "auth": {"secretRef": SECRET_REF},
        }
    )
    return body


def _everything_stored(url: str) -> str:
    """Every row of every table of the schema, as text."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'orchestrator'"
            ).fetchall()
        ]
        out = []
        for table in tables:
            rows = conn.execute(f"SELECT t::text FROM orchestrator.{table} t").fetchall()
            out += [r[0] for r in rows]
        return "\n".join(out)


async def test_planted_secrets_never_come_out(targets, secrets_db, make_token, log_stream):
    scheduler_target, audit_target = targets
    async with (
        grpc.aio.insecure_channel(scheduler_target) as sch,
        grpc.aio.insecure_channel(audit_target) as aud,
    ):
        scheduler = Stub(sch, make_token("acme"))
        metadata = (("authorization", f"Bearer {make_token('acme', ('orch:read',))}"),)
        audit = audit_pb2_grpc.AuditServiceStub(aud)
        responses: list[str] = []

        source = await scheduler.CreateSource(
            scheduler_pb2.CreateSourceRequest(
                source=resources_pb2.Source(
                    name="nvd",
                    source_type="nvd",
                    host="feeds.example",
                    base_url=f"https://svc:{SECRETS[5]}@feeds.example",
                    enabled=True,
                    labels={"client_secret": SECRETS[6]},
                )
            )
        )
        responses.append(str(source))
        run = await scheduler.CreateRun(
            scheduler_pb2.CreateRunRequest(
                name="planted",
                source_id=source.source.id,
                jobs=[
                    resources_pb2.JobSpec(
                        key=f"j{i}",
                        job_type=JOB_TYPE,
                        payload=_payload(),
                        labels={"token": SECRETS[7]},
                    )
                    for i in range(3)
                ],
            )
        )
        responses.append(str(run))
        job_ids = [job.id for job in run.jobs]
        assert run.jobs[0].payload["auth"]["secretRef"] == SECRET_REF

        async with Database(secrets_db) as db:
            leases = LeaseLedger(db, rng=random.Random(1))
            ctx = TxContext(tenant="acme", actor_subject="worker-1", now=datetime.now(UTC))
            claimed = await leases.claim(
                ctx, worker_id="worker-1", job_types=[JOB_TYPE], limit=3, tenants=["acme"]
            )
            assert len(claimed) == 3
            await leases.progress(
                ctx,
                [
                    ProgressUpdate(
                        claimed[0]["id"],
                        claimed[0]["lease_id"],
                        50.0,
                        f"fetching with password={SECRETS[8]}",
                    )
                ],
                tenants=["acme"],
            )
            await leases.fail(
                ctx,
                [
                    Failure(
                        claimed[1]["id"],
                        claimed[1]["lease_id"],
                        "http_4xx",
                        f"401 for Authorization: Bearer {SECRETS[9]}",
                        retryable=False,
                    ),
                    Failure(
                        claimed[2]["id"],
                        claimed[2]["lease_id"],
                        "http_5xx",
                        f"GET https://u:{SECRETS[10]}@feeds.example failed",
                    ),
                ],
                tenants=["acme"],
            )
        await scheduler.CancelJob(
            scheduler_pb2.CancelJobRequest(
                job_id=job_ids[0],
                operator=common_pb2.OperatorContext(
                    reason=f"rotating api_key={SECRETS[11]}", ticket="T-9"
                ),
            )
        )
        for job_id in job_ids:
            responses.append(
                str(await scheduler.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id)))
            )
            responses.append(
                str(
                    await scheduler.ListJobEvents(scheduler_pb2.ListJobEventsRequest(job_id=job_id))
                )
            )
        responses.append(
            str(
                await scheduler.GetSource(
                    scheduler_pb2.GetSourceRequest(source_id=source.source.id)
                )
            )
        )
        bundles = []
        for scope in (
            {"run_id": run.run.id},
            {"source_id": source.source.id},
        ):
            chunks = [
                m.chunk
                async for m in audit.ExportBundle(
                    audit_pb2.ExportBundleRequest(**scope), metadata=metadata
                )
            ]
            bundles.append(b"".join(chunks))
        entries = await audit.ListAuditEntries(
            audit_pb2.ListAuditEntriesRequest(), metadata=metadata
        )
        responses.append(str(entries))
        assert entries.entries[-1].reason == "rotating api_key=[REDACTED]"

    stored = _everything_stored(secrets_db)
    logs = log_stream.getvalue()
    assert logs, "the services logged"
    outputs = {
        "ledger": stored,
        "api": "\n".join(responses),
        "bundles": b"\n".join(bundles).decode("utf-8"),
        "logs": logs,
    }
    leaks = [(where, s) for where, text in outputs.items() for s in SECRETS if s in text]
    assert not leaks, leaks
    assert "[REDACTED]" in outputs["ledger"]
    assert "[REDACTED]" in outputs["api"]
    assert SECRET_REF in outputs["ledger"]
    assert SECRET_REF in outputs["api"]
    assert "[REDACTED]" in outputs["bundles"]


def test_sql_and_python_redaction_agree(secrets_db):
    samples = [
        "401 for Authorization: Bearer abcdef123456",
        "GET https://u:pw-123@h.example/x failed",
        'body {"password": "hunter22", "user": "a"}',
        "token=abc123; api-key: zzz999",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
        "plain upstream 503, token bucket empty",
    ]
    with psycopg.connect(secrets_db, autocommit=True) as conn:
        for text in samples:
            (sql,) = conn.execute("SELECT orchestrator.redact_text(%s)", (text,)).fetchone()
            assert sql == redact_text(text), text
    assert json.dumps(samples)
