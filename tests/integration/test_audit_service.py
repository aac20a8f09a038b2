"""The audit service against real PostgreSQL over real gRPC channels: the chain, exports
(deterministic, signed, verifiable offline, replayable), audit entries, chain heads, and
refusals of bad input with google.rpc details."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import random
import subprocess
import sys
import tarfile
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from orchestrator_audit import Signer, generate_private_pem, replay_archive, verify_archive
from orchestrator_audit._bundle import ALL_FILES
from orchestrator_pg import Completion, Database, Failure, LeaseLedger, TxContext
from stella.orchestrator.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    common_pb2,
    resources_pb2,
    scheduler_pb2,
)
from tests.conftest import Stub, migrated_database, service_config

pytestmark = pytest.mark.integration

JOB_TYPE = "audit.replay"


class AuditStub:
    """AuditService stub with a bearer token."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self._stub = audit_pb2_grpc.AuditServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {token}"),)

    def __getattr__(self, name: str):
        method = getattr(self._stub, name)

        def call(request, **kwargs):
            return method(request, metadata=self._metadata, **kwargs)

        return call

    async def export(self, **scope) -> tuple[bytes, audit_pb2.BundleManifest]:
        chunks: list[bytes] = []
        summary = None
        async for message in self._stub.ExportBundle(
            audit_pb2.ExportBundleRequest(**scope), metadata=self._metadata
        ):
            chunks.append(message.chunk)
            if message.HasField("summary"):
                summary = message.summary
        assert summary is not None, "the last message carries the summary"
        return b"".join(chunks), summary


@pytest.fixture(scope="module")
def audit_db(admin_url):
    with migrated_database(admin_url, "orch_audit", tenants=("acme", "globex")) as url:
        yield url


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.from_pem(generate_private_pem())


@pytest.fixture(scope="module")
async def stack(audit_db, signer):
    """Scheduler and audit services in-process on the module's database."""
    from orchestrator_audit import build_service as build_audit
    from orchestrator_scheduler import build_service as build_scheduler

    async with (
        build_scheduler(service_config("scheduler", audit_db)) as scheduler,
        build_audit(service_config("audit", audit_db), signer=signer) as audit,
    ):
        await scheduler.start()
        await audit.start()
        try:
            yield {
                "scheduler": f"127.0.0.1:{scheduler.port}",
                "audit": f"127.0.0.1:{audit.port}",
                "chainer": audit.chainer,
            }
        finally:
            await audit.stop()
            await scheduler.stop()


@pytest.fixture
async def channels(stack):
    async with (
        grpc.aio.insecure_channel(stack["scheduler"]) as sched,
        grpc.aio.insecure_channel(stack["audit"]) as aud,
    ):
        yield sched, aud


@pytest.fixture
def scheduler(channels, make_token):
    return Stub(channels[0], make_token("acme"))


@pytest.fixture
def audit(channels, make_token):
    return AuditStub(channels[1], make_token("acme", ("orch:read",)))


@pytest.fixture
def audit_stranger(channels, make_token):
    return AuditStub(channels[1], make_token("globex", ("orch:read",)))


@pytest.fixture
async def leases(audit_db):
    async with Database(audit_db) as db:
        yield LeaseLedger(db, rng=random.Random(7))


def _ctx(now: datetime) -> TxContext:
    return TxContext(tenant="acme", actor_subject="worker-1", now=now)


async def _claim_all(leases: LeaseLedger, now: datetime) -> list[dict]:
    claimed: list[dict] = []
    while True:
        rows = await leases.job_claim_batch(
            _ctx(now), worker_id="worker-1", job_types=[JOB_TYPE], limit=500, tenants=["acme"]
        )
        if not rows:
            return claimed
        claimed += rows


async def _run_with_history(scheduler, leases, n: int) -> tuple[str, dict[str, int]]:
    """A run of ``n`` jobs driven through retries, dead letters, cancellations, operator
    retries and successes; returns the run id and how many jobs took each path."""
    specs = [
        resources_pb2.JobSpec(
            key=f"j{i}",
            job_type=JOB_TYPE,
            retry_policy=common_pb2.RetryPolicy(max_attempts=3),
        )
        for i in range(n)
    ]
    reply = await scheduler.CreateRun(scheduler_pb2.CreateRunRequest(name="replay", jobs=specs))
    run_id = reply.run.id
    ids = [job.id for job in reply.jobs]
    paths = {"canceled": 0, "dead": 0, "retried_ok": 0, "ok": 0, "operator_retry": 0}
    # cancel every 10th job while still ready (operator action, audited)
    for job_id in ids[::10]:
        await scheduler.CancelJob(
            scheduler_pb2.CancelJobRequest(
                job_id=job_id,
                operator=common_pb2.OperatorContext(reason="duplicate feed", ticket="T-1"),
            )
        )
        paths["canceled"] += 1
    now = datetime.now(UTC)
    first = await _claim_all(leases, now)
    fail, complete = [], []
    for index, row in enumerate(first):
        if index % 7 == 0:
            fail.append(Failure(row["id"], row["lease_id"], "http_5xx", "upstream 503"))
        elif index % 11 == 0:
            fail.append(
                Failure(row["id"], row["lease_id"], "schema_mismatch", "bad", retryable=False)
            )
            paths["dead"] += 1
        else:
            complete.append(Completion(row["id"], row["lease_id"], {"ok": True}))
            paths["ok"] += 1
    await leases.job_fail_many(_ctx(now), fail, tenants=["acme"])
    await leases.job_complete_many(_ctx(now), complete, tenants=["acme"])
    # the retryable ones come back after their backoff and succeed
    later = now + timedelta(hours=1)
    second = await _claim_all(leases, later)
    await leases.job_complete_many(
        _ctx(later),
        [Completion(r["id"], r["lease_id"], {"ok": 2}) for r in second],
        tenants=["acme"],
    )
    paths["retried_ok"] = len(second)
    # an operator retries one dead job; it stays ready (no worker) in the bundle
    dead = [f.job_id for f in fail if not f.retryable]
    if dead:
        await scheduler.RetryJob(
            scheduler_pb2.RetryJobRequest(
                job_id=str(dead[0]),
                operator=common_pb2.OperatorContext(reason="fixed", ticket="T-2"),
            )
        )
        paths["operator_retry"] = 1
    return run_id, paths


async def _wait_chained(stack, database_url: str, timeout_s: float = 30.0) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        target = conn.execute(
            "SELECT coalesce(pg_sequence_last_value('orchestrator.events_seq'), 0)"
        ).fetchone()[0]
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            row = conn.execute("SELECT seq FROM orchestrator.audit_cursor").fetchone()
            if row and row[0] >= target:
                return
            assert asyncio.get_running_loop().time() < deadline, "chainer did not catch up"
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def run_box():
    return {}


async def _the_run(scheduler, leases, run_box) -> str:
    if "run_id" not in run_box:
        run_box["run_id"], run_box["paths"] = await _run_with_history(scheduler, leases, 1000)
    return run_box["run_id"]


async def test_export_twice_is_byte_identical_and_verifies(
    scheduler, audit, leases, stack, audit_db, run_box, signer
):
    run_id = await _the_run(scheduler, leases, run_box)
    paths = run_box["paths"]
    assert paths["canceled"] == 100
    assert paths["dead"] > 0
    assert paths["retried_ok"] > 0
    first, summary = await audit.export(run_id=run_id)
    second, again = await audit.export(run_id=run_id)
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    assert summary.sha256 == hashlib.sha256(first).hexdigest() == again.sha256
    assert summary.counts["jobs.jsonl"] == 1000
    assert summary.counts["history.jsonl"] > 3000
    assert [f.path for f in summary.files] == ["history.jsonl", "jobs.jsonl", "throttles.jsonl"]
    key = await audit.GetPublicKey(audit_pb2.GetPublicKeyRequest())
    assert key.key_id == signer.key_id == summary.key_id
    assert key.algorithm == "ed25519"
    from orchestrator_audit import load_public_key

    verdict = verify_archive(first, [load_public_key(key.public_key_pem.encode())])
    assert verdict.ok, verdict.problems
    replayed = replay_archive(first)
    assert replayed.ok, replayed.problems[:5]
    assert [m.name for m in _members(first)] == sorted(ALL_FILES)
    for member in _members(first):
        assert (member.mtime, member.uid, member.gid, member.mode) == (0, 0, 0, 0o644)
    # the service's own verification agrees
    verified = await audit.VerifyBundle(audit_pb2.VerifyBundleRequest(bundle=first))
    assert verified.ok
    assert not verified.problems
    assert verified.manifest.chain_head.seq == summary.chain_head.seq > 0


async def test_replay_covers_every_path_and_jobs_match_the_ledger(
    scheduler, audit, leases, stack, run_box
):
    run_id = await _the_run(scheduler, leases, run_box)
    archive, _ = await audit.export(run_id=run_id)
    files = _files(archive)
    jobs = [json.loads(line) for line in files["jobs.jsonl"].splitlines()]
    states = {
        state: sum(1 for j in jobs if j["state"] == state)
        for state in ("succeeded", "dead", "canceled", "ready")
    }
    assert states["canceled"] == 100
    assert states["dead"] >= 1
    assert states["ready"] == 1
    assert states["succeeded"] == 1000 - 100 - states["dead"] - 1
    assert any(j["attempt"] == 2 and j["state"] == "succeeded" for j in jobs)
    # a job record edited to disagree with its history is caught, by name
    broken = files["jobs.jsonl"].replace(b'"state":"dead"', b'"state":"succeeded"', 1)
    from orchestrator_audit import tar_bytes

    files_broken = dict(files, **{"jobs.jsonl": broken})
    verdict = replay_archive(tar_bytes(files_broken))
    assert not verdict.ok
    assert any(
        "state is 'succeeded', replaying history.jsonl gives 'dead'" in p for p in verdict.problems
    )


def _files(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        out = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            out[member.name] = handle.read()
        return out


def _members(archive: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return tar.getmembers()


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "stella_orchestrator.cli", "orchestrator", "audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def _member_offsets(archive: bytes) -> dict[str, int]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: m.offset_data for m in tar.getmembers()}


async def test_flipping_any_byte_fails_verification_naming_what(
    scheduler, audit, leases, stack, run_box, signer, tmp_path
):
    run_id = await _the_run(scheduler, leases, run_box)
    archive, _ = await audit.export(run_id=run_id)
    key = signer.public_key
    offsets = _member_offsets(archive)
    sizes = {m.name: m.size for m in _members(archive)}
    for name, offset in offsets.items():
        if sizes[name] == 0:
            continue
        verdict = verify_archive(_flip(archive, offset + 20), [key])
        assert not verdict.ok
        assert any(p.startswith(name) or name in p for p in verdict.problems), (name, verdict)
    # the signature itself
    envelope = _files(archive)["manifest.dsse.json"]
    sig_at = offsets["manifest.dsse.json"] + envelope.index(b'"sig":"') + 10
    verdict = verify_archive(_flip(archive, sig_at), [key])
    assert any("signature by key" in p for p in verdict.problems), verdict.problems
    # tar header, padding and the end-of-archive blocks
    assert sizes["history.jsonl"] % 512, "the test needs padding after history.jsonl"
    for offset, where in (
        (100, "archive: "),  # a header name byte: the tar checksum no longer matches
        (offsets["jobs.jsonl"] - 513, "in the padding after history.jsonl"),
        (len(archive) - 1, "in the end-of-archive blocks"),
    ):
        verdict = verify_archive(_flip(archive, offset), [key])
        assert any(p.startswith("archive:") and where in p for p in verdict.problems), (
            offset,
            verdict.problems,
        )
    # a sample over the whole archive: every flip is caught
    rng = random.Random(5)
    for offset in rng.sample(range(len(archive)), 40):
        assert not verify_archive(_flip(archive, offset), [key]).ok, offset
    # the wrong key
    other = Signer.from_pem(generate_private_pem())
    verdict = verify_archive(archive, [other.public_key])
    assert any("no signature by the given key" in p for p in verdict.problems)
    # and the CLI, offline, exits non-zero naming the file
    good, bad, pub = tmp_path / "b.tar", tmp_path / "bad.tar", tmp_path / "k.pem"
    good.write_bytes(archive)
    bad.write_bytes(_flip(archive, offsets["jobs.jsonl"] + 5))
    pub.write_text(signer.public_key_pem)
    ok = await _cli("verify", str(good), "--key", str(pub))
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    failed = await _cli("verify", str(bad), "--key", str(pub))
    assert failed.returncode == 1
    assert "jobs.jsonl: sha256" in failed.stderr
    replayed = await _cli("replay", str(good))
    assert replayed.returncode == 0, replayed.stderr


async def test_dsse_envelope_verifies_with_securesystemslib(
    scheduler, audit, leases, stack, run_box, signer
):
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    run_id = await _the_run(scheduler, leases, run_box)
    archive, _ = await audit.export(run_id=run_id)
    raw = _files(archive)["manifest.dsse.json"]
    envelope = Envelope.from_dict(json.loads(raw))
    key = SSlibKey.from_crypto(signer.public_key, keyid=signer.key_id)
    assert signer.key_id in envelope.verify([key], 1)
    statement = json.loads(envelope.payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    manifest = _files(archive)["manifest.json"]
    digests = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert digests["manifest.json"] == hashlib.sha256(manifest).hexdigest()
    # a tampered payload fails the independent check too
    doc = json.loads(raw)
    doc["payload"] = base64.b64encode(envelope.payload.replace(b"jobs", b"jobz")).decode()
    from securesystemslib.exceptions import VerificationError

    with pytest.raises(VerificationError):
        Envelope.from_dict(doc).verify([key], 1)


async def test_time_range_and_source_scopes(scheduler, audit, stack, audit_db):
    source = await scheduler.CreateSource(
        scheduler_pb2.CreateSourceRequest(
            source=resources_pb2.Source(
                name=f"s{uuid.uuid4().hex[:6]}", source_type="nvd", host="h.example", enabled=True
            )
        )
    )
    start = datetime.now(UTC) - timedelta(seconds=1)
    await scheduler.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[
                resources_pb2.JobSpec(job_type="audit.window", source_id=source.source.id)
                for _ in range(5)
            ]
        )
    )
    window = common_pb2.TimeWindow()
    window.start.FromDatetime(start)
    window.end.FromDatetime(datetime.now(UTC) + timedelta(seconds=1))
    archive, summary = await audit.export(time_range=window)
    assert verify_archive(archive, None).ok
    assert replay_archive(archive).ok
    again, _ = await audit.export(time_range=window)
    assert again == archive
    by_source, summary = await audit.export(source_id=source.source.id)
    assert summary.counts["jobs.jsonl"] == 5
    assert replay_archive(by_source).ok


async def _source_with_jobs(scheduler, n: int) -> str:
    source = await scheduler.CreateSource(
        scheduler_pb2.CreateSourceRequest(
            source=resources_pb2.Source(
                name=f"s{uuid.uuid4().hex[:6]}", source_type="nvd", host="h.example", enabled=True
            )
        )
    )
    await scheduler.SubmitJobs(
        scheduler_pb2.SubmitJobsRequest(
            jobs=[
                resources_pb2.JobSpec(job_type="audit.long", source_id=source.source.id)
                for _ in range(n)
            ]
        )
    )
    return str(source.source.id)


def _reason(error: grpc.aio.AioRpcError) -> str:
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


async def test_a_long_reading_transaction_does_not_hold_up_an_export(
    scheduler, audit, audit_db, monkeypatch
):
    """A report or an idle session holding an old snapshot (no event written) does not delay
    the chain: the export right after a submission has every event."""
    from orchestrator_audit import _servicer

    monkeypatch.setattr(_servicer, "EXPORT_CHAIN_WAIT_S", 60.0)  # generous: a loaded machine
    with psycopg.connect(audit_db) as reader:
        reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM orchestrator.jobs").fetchone()
        source_id = await _source_with_jobs(scheduler, 4)
        archive, summary = await audit.export(source_id=source_id)
        assert summary.counts["jobs.jsonl"] == 4
        assert verify_archive(archive, None).ok
        reader.rollback()


async def test_an_open_transaction_writing_events_holds_the_chain_until_it_ends(
    scheduler, audit, audit_db, monkeypatch
):
    """An event writer left open (a stuck session of an operator's script, a transaction
    waiting on a lock) could still commit events below the newest seq, so the chain waits
    for it and an export answers UNAVAILABLE / CHAIN_BEHIND rather than leave them out;
    once it ends, the export has everything."""
    from orchestrator_audit import _servicer

    monkeypatch.setattr(_servicer, "EXPORT_CHAIN_WAIT_S", 1.0)
    with psycopg.connect(audit_db) as writer:
        # What an event writer holds from its first event until it ends.
        writer.execute("LOCK TABLE orchestrator.events IN ROW EXCLUSIVE MODE")
        source_id = await _source_with_jobs(scheduler, 3)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await audit.export(source_id=source_id)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert _reason(caught.value) == "CHAIN_BEHIND"
        writer.rollback()
    monkeypatch.setattr(_servicer, "EXPORT_CHAIN_WAIT_S", 60.0)  # generous: a loaded machine
    archive, summary = await audit.export(source_id=source_id)
    assert summary.counts["jobs.jsonl"] == 3
    assert replay_archive(archive).ok


def _bad_request(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            info = error_details_pb2.BadRequest()
            detail.Unpack(info)
            fields += [v.field for v in info.field_violations]
    return fields


async def test_bad_input_gets_invalid_argument_with_details(audit, stack):
    cases = [
        (audit_pb2.ExportBundleRequest(), "scope"),
        (audit_pb2.ExportBundleRequest(run_id="not-a-uuid"), "run_id"),
        (audit_pb2.ExportBundleRequest(time_range=common_pb2.TimeWindow()), "time_range"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in audit._stub.ExportBundle(request, metadata=audit._metadata):
                pass
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in _bad_request(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await audit.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(page_token="garbage"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in _bad_request(caught.value)
    window = common_pb2.TimeWindow()
    window.start.FromDatetime(datetime.now(UTC))
    window.end.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await audit.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(time_range=window))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in audit._stub.ExportBundle(
            audit_pb2.ExportBundleRequest(run_id=str(uuid.uuid4())), metadata=audit._metadata
        ):
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await audit.GetPublicKey(audit_pb2.GetPublicKeyRequest(key_id="nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    garbage = await audit.VerifyBundle(audit_pb2.VerifyBundleRequest(bundle=b"not a tar"))
    assert not garbage.ok
    assert garbage.problems[0].startswith("archive:")


async def test_audit_entries_query_and_chain_head(
    scheduler, audit, leases, stack, audit_db, run_box
):
    await _the_run(scheduler, leases, run_box)
    await _wait_chained(stack, audit_db)
    page = await audit.ListAuditEntries(
        audit_pb2.ListAuditEntriesRequest(action="job.cancel", page_size=40)
    )
    assert len(page.entries) == 40
    assert page.next_page_token
    entry = page.entries[0]
    assert entry.actor.subject == "tester"
    assert entry.reason == "duplicate feed"
    assert entry.ticket == "T-1"
    assert entry.target.startswith("jobs/")
    assert len(entry.hash) == 64
    assert len(entry.prev_hash) == 64
    assert entry.event_id
    seen = [e.seq for e in page.entries]
    while page.next_page_token:
        page = await audit.ListAuditEntries(
            audit_pb2.ListAuditEntriesRequest(
                action="job.cancel", page_size=40, page_token=page.next_page_token
            )
        )
        seen += [e.seq for e in page.entries]
    assert len(seen) == 100
    assert seen == sorted(seen)
    retry = await audit.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(action="job.retry"))
    assert [e.reason for e in retry.entries] == ["fixed"]
    nobody = await audit.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(actor="nobody"))
    assert not nobody.entries
    window = common_pb2.TimeWindow()
    window.end.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    assert not (
        await audit.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(time_range=window))
    ).entries
    head = (await audit.GetChainHead(audit_pb2.GetChainHeadRequest())).head
    assert head.tenant == "acme"
    assert head.seq > 0
    assert len(head.hash) == 64
    assert head.HasField("anchored_at")


@pytest.fixture
def behind_db(admin_url):
    with migrated_database(admin_url, "orch_audit_behind", tenants=("acme",)) as url:
        yield url


async def test_export_refuses_while_the_chain_is_behind(behind_db, signer, make_token, monkeypatch):
    """With no chainer running, an export is refused with UNAVAILABLE / CHAIN_BEHIND instead
    of leaving committed events out."""
    from orchestrator_audit import _servicer, build_service
    from orchestrator_audit._chainer import Chainer

    async def idle(self) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(Chainer, "run_forever", idle)
    monkeypatch.setattr(_servicer, "EXPORT_CHAIN_WAIT_S", 0.2)
    url = behind_db
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orchestrator.sources (id, tenant, name, source_type, host,"
            " created_at, updated_at) VALUES (gen_random_uuid(), 'acme', 'n', 'nvd', 'h',"
            " now(), now())"
        )
    async with build_service(service_config("audit", url), signer=signer) as service:
        await service.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
                stub = AuditStub(channel, make_token("acme", ("orch:read",)))
                window = common_pb2.TimeWindow()
                window.start.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
                window.end.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.export(time_range=window)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
                info = [
                    d
                    for d in rpc_status.from_call(caught.value).details
                    if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)
                ]
                reason = error_details_pb2.ErrorInfo()
                info[0].Unpack(reason)
                assert reason.reason == "CHAIN_BEHIND"
        finally:
            await service.stop()
