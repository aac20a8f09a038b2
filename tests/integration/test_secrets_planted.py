"""Secrets planted in every input path never come out: not in API responses, not in audit
bundles, not in the logs.

Inputs are never altered, so what looks like a live credential (a URL with a password, a
Bearer header, a ``password`` or ``api_key`` field, a ``client_secret`` label) is refused at
submit and stored nowhere; what does not (a ``token=…`` note, a ``token`` label) is stored as
given and redacted where it leaves for display. Worker failure and progress messages (through
the lease ledger, as the leases service writes them) and operator reasons and tickets are
free text redacted before they are stored. ``secretRef`` values are references, not secrets,
and must survive.
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
from google.protobuf import json_format, struct_pb2

from orchestrator_audit import Signer, generate_private_pem
from orchestrator_core.redaction import redact_text
from orchestrator_grpckit import configure_logging, error_details
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


# SECRETS 0-3, 5 and 6 are refused at submit; 8-11 are free text redacted before storage.
# Accepted and stored as given (not credential-shaped), redacted wherever they are shown.
STORED = (SECRETS[4], SECRETS[7])


def _struct(value: dict[str, object]) -> struct_pb2.Struct:
    body = struct_pb2.Struct()
    body.update(value)
    return body


def _credential_payload() -> struct_pb2.Struct:
    return _struct(
        {
            "url": f"https://svc:{SECRETS[0]}@feeds.example/cve",
            "headers": {"Authorization": f"Bearer {SECRETS[1]}", "Accept": "application/json"},
            "password": SECRETS[2],
            "api_key": SECRETS[3],
            "auth": {"secretRef": SECRET_REF},
        }
    )


def _payload() -> struct_pb2.Struct:
    return _struct(
        {
            "url": "https://feeds.example/cve?page_token=eyJvZmZzZXQiOjEwMH0",
            "page_token": "eyJvZmZzZXQiOjEwMH0",
            "note": f"retry with token={SECRETS[4]}",
            "auth": {"secretRef": SECRET_REF},
        }
    )


def _violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    details = error_details(err)
    return {v.field: v.description for v in details["BadRequest"].field_violations}


def _count(url: str, table: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(f"SELECT count(*) FROM orchestrator.{table}").fetchone()[0]


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

        # credential-shaped inputs are refused, each field named, and nothing is stored
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await scheduler.CreateSource(
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
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(_violations(refused.value)) == {
            "source.base_url",
            "source.labels.client_secret",
        }
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await scheduler.CreateRun(
                scheduler_pb2.CreateRunRequest(
                    name="planted",
                    jobs=[
                        resources_pb2.JobSpec(
                            key="j0", job_type=JOB_TYPE, payload=_credential_payload()
                        )
                    ],
                )
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        violations = _violations(refused.value)
        assert set(violations) == {
            f"jobs[0].payload.{f}" for f in ("url", "headers.Authorization", "password", "api_key")
        }
        assert all("secretRef" in text for text in violations.values())
        responses.append(str(refused.value.details()) + str(violations))
        assert (_count(secrets_db, "sources"), _count(secrets_db, "runs")) == (0, 0)
        assert _count(secrets_db, "jobs") == 0

        source = await scheduler.CreateSource(
            scheduler_pb2.CreateSourceRequest(
                source=resources_pb2.Source(
                    name="nvd",
                    source_type="nvd",
                    host="feeds.example",
                    base_url="https://feeds.example",
                    enabled=True,
                )
            )
        )
        responses.append(str(source))
        submitted = [_payload() for _ in range(3)]
        run = await scheduler.CreateRun(
            scheduler_pb2.CreateRunRequest(
                name="planted",
                source_id=source.source.id,
                jobs=[
                    resources_pb2.JobSpec(
                        key=f"j{i}",
                        job_type=JOB_TYPE,
                        payload=submitted[i],
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
            claimed = await leases.job_claim_batch(
                ctx, worker_id="worker-1", job_types=[JOB_TYPE], limit=3, tenants=["acme"]
            )
            assert len(claimed) == 3
            # the worker's copy is the submitted payload, unaltered
            assert sorted(
                (json_format.MessageToDict(p) for p in submitted), key=json.dumps
            ) == sorted((c["payload"] for c in claimed), key=json.dumps)
            await leases.job_progress_many(
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
            await leases.job_fail_many(
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
    # Inputs that were accepted are stored as given; nothing else planted is stored anywhere.
    shown = {k: v for k, v in outputs.items() if k != "ledger"}
    leaks = [(where, s) for where, text in shown.items() for s in SECRETS if s in text]
    leaks += [("ledger", s) for s in SECRETS if s in stored and s not in STORED]
    assert not leaks, leaks
    assert all(s in stored for s in STORED)
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
