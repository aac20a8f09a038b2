"""Configuration kits (issue 21): ``stella orchestrator kit export|import|verify`` against real
scheduler, ratelimit and audit services on two databases, a populated one and a fresh one.

The CLI runs as a subprocess, as an operator runs it; the services run in-process."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import tarfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from stella.orchestrator.v1 import (
    common_pb2,
    ratelimit_pb2,
    ratelimit_pb2_grpc,
    resources_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
)
from stella_orchestrator._kit import build_kit
from stella_orchestrator.signing import Signer, tar_bytes
from tests._signing import write_key_pairs
from tests.conftest import REDIS_URL, migrated_database, service_config

pytestmark = pytest.mark.integration
SCOPES = ("orch:read", "orch:operate", "orch:quota")
OPERATOR = common_pb2.OperatorContext(reason="kit test", ticket="OPS-21")
CLI_TIMEOUT_S = 120


@dataclass
class Site:
    """One installation: scheduler + ratelimit (+ audit) on its own database and Redis prefix."""

    scheduler: str
    ratelimit: str
    audit: str


@pytest.fixture(scope="module")
def databases(admin_url: str) -> Iterator[dict[str, str]]:
    """The populated site's database and a fresh one."""
    with (
        migrated_database(admin_url, "orch_kit_a", tenants=("acme",)) as db_a,
        migrated_database(admin_url, "orch_kit_b", tenants=("acme",)) as db_b,
    ):
        yield {"a": db_a, "b": db_b}


@pytest.fixture(scope="module")
async def sites(databases: dict[str, str]) -> AsyncIterator[dict[str, Site]]:
    from orchestrator_audit import build_service as build_audit
    from orchestrator_ratelimit import RatelimitSettings, build_app
    from orchestrator_scheduler import build_service as build_scheduler

    out: dict[str, Site] = {}
    async with AsyncExitStack() as stack:
        for name, db in databases.items():
            settings = RatelimitSettings(
                key_prefix=f"orch:kittest:{uuid.uuid4().hex}:", envoy_port=0
            )
            sched = await stack.enter_async_context(
                build_scheduler(service_config("scheduler", db), schedule_firing=False)
            )
            rl = await stack.enter_async_context(
                build_app(service_config("ratelimit", db), redis_url=REDIS_URL, settings=settings)
            )
            aud = await stack.enter_async_context(
                build_audit(service_config("audit", db), signer=Signer.development())
            )
            for service in (sched, rl.service, aud):
                await service.start()
                stack.push_async_callback(service.stop)
            out[name] = Site(
                f"127.0.0.1:{sched.port}", f"127.0.0.1:{rl.service.port}", f"127.0.0.1:{aud.port}"
            )
        yield out


def _ts(value: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


async def _populate(site: Site, token: str) -> None:
    md = (("authorization", f"Bearer {token}"),)
    async with (
        grpc.aio.insecure_channel(site.scheduler) as sch,
        grpc.aio.insecure_channel(site.ratelimit) as rlc,
    ):
        sched = scheduler_pb2_grpc.SchedulerServiceStub(sch)
        hooks = webhooks_pb2_grpc.WebhookServiceStub(sch)
        rl = ratelimit_pb2_grpc.RateLimitServiceStub(rlc)
        nvd = (
            await sched.CreateSource(
                scheduler_pb2.CreateSourceRequest(
                    source=resources_pb2.Source(
                        name="nvd",
                        source_type="advisory",
                        host="services.nvd.nist.gov",
                        base_url="https://services.nvd.nist.gov/rest",
                        enabled=True,
                        job_types=["advisory.fetch", "advisory.parse"],
                        labels={"feed": "cve", "tier": "1"},
                        max_active=4,
                    ),
                    operator=OPERATOR,
                ),
                metadata=md,
            )
        ).source
        await sched.CreateSource(
            scheduler_pb2.CreateSourceRequest(
                source=resources_pb2.Source(
                    name="osv", source_type="advisory", host="api.osv.dev", paused=True
                ),
                operator=common_pb2.OperatorContext(reason="feed broken", ticket="OPS-7"),
            ),
            metadata=md,
        )
        template = resources_pb2.RunTemplate(
            name="nvd {fire_time}",
            jobs=[
                resources_pb2.JobSpec(key="fetch", job_type="advisory.fetch"),
                resources_pb2.JobSpec(key="parse", job_type="advisory.parse", depends_on=["fetch"]),
            ],
        )
        await sched.CreateSchedule(
            scheduler_pb2.CreateScheduleRequest(
                schedule=resources_pb2.Schedule(
                    name="nvd-hourly",
                    cron="@hourly",
                    source_id=nvd.id,
                    run_template=template,
                    enabled=True,
                    catch_up=resources_pb2.CATCH_UP_POLICY_ALL,
                    catch_up_window=duration_pb2.Duration(seconds=7200),
                ),
                operator=OPERATOR,
            ),
            metadata=md,
        )
        await sched.CreateQuota(
            scheduler_pb2.CreateQuotaRequest(
                quota=resources_pb2.Quota(job_type="advisory.fetch", max_active=8, max_queued=100),
                operator=OPERATOR,
            ),
            metadata=md,
        )
        await rl.ConfigureBucket(
            ratelimit_pb2.ConfigureBucketRequest(
                key=ratelimit_pb2.BucketKey(host="services.nvd.nist.gov"),
                capacity=50,
                refill_per_second=2.5,
                operator=OPERATOR,
            ),
            metadata=md,
        )
        await rl.SetBlackout(
            ratelimit_pb2.SetBlackoutRequest(
                blackout=ratelimit_pb2.Blackout(
                    source_id=nvd.id,
                    start=_ts(datetime(2031, 1, 1, tzinfo=UTC)),
                    end=_ts(datetime(2031, 1, 1, tzinfo=UTC) + timedelta(hours=2)),
                    reason="upstream maintenance",
                ),
                operator=OPERATOR,
            ),
            metadata=md,
        )
        for url, enabled in (
            ("https://hooks.example.com/a", True),
            ("https://ops.example.com/b", False),
        ):
            created = await hooks.CreateWebhook(
                webhooks_pb2.CreateWebhookRequest(
                    url=url,
                    event_types=["run.finished", "job.dead"],
                    source_id=nvd.id if enabled else "",
                    description=f"kit test {url}",
                    operator=OPERATOR,
                ),
                metadata=md,
            )
            if not enabled:
                await hooks.UpdateWebhook(
                    webhooks_pb2.UpdateWebhookRequest(
                        webhook_id=created.webhook.id, enabled=False, operator=OPERATOR
                    ),
                    metadata=md,
                )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_key_pairs(tmp_path_factory.mktemp("kitkeys"), "signer", "stranger")


@dataclass
class Result:
    rc: int
    out: str
    err: str


async def _kit(token: str, *args: str) -> Result:
    env = {**os.environ, "STELLA_ORCH_TOKEN": token}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stella_orchestrator",
        "orchestrator",
        "kit",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(CLI_TIMEOUT_S):
        out, err = await proc.communicate()
    return Result(proc.returncode or 0, out.decode(), err.decode())


def _targets(site: Site) -> list[str]:
    return ["--scheduler", site.scheduler, "--ratelimit", site.ratelimit]


async def _export(site: Site, token: str, keys: dict[str, Path], out: Path, *extra: str) -> bytes:
    got = await _kit(
        token,
        "export",
        *_targets(site),
        "--tenant",
        "acme",
        "--signing-key",
        str(keys["signer"]),
        "--out",
        str(out),
        *extra,
    )
    assert got.rc == 0, got.err
    return await asyncio.to_thread(out.read_bytes)


async def _import(site: Site, token: str, keys: dict[str, Path], kit: Path, *extra: str) -> Result:
    return await _kit(
        token, "import", str(kit), *_targets(site), "--key", str(keys["signer.pub"]), *extra
    )


async def test_export_import_reproduces_the_configuration_byte_for_byte(
    sites, keys, make_token, tmp_path
) -> None:
    token = make_token("acme", SCOPES)
    await _populate(sites["a"], token)
    first = await _export(sites["a"], token, keys, tmp_path / "a1.tar")
    again = await _export(sites["a"], token, keys, tmp_path / "a2.tar")
    assert first == again, "two exports of the same configuration differ"
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
        sources = tar.extractfile("config/sources.jsonl").read()  # type: ignore[union-attr]
        webhooks = tar.extractfile("config/webhooks.jsonl").read()  # type: ignore[union-attr]
    assert sources.count(b"\n") == 2
    assert b'"name":"nvd"' in sources
    assert b"whsec_" not in first
    assert b"secret" not in webhooks

    empty = await _export(sites["b"], token, keys, tmp_path / "b0.tar")
    dry = await _import(sites["b"], token, keys, tmp_path / "a1.tar", "--dry-run")
    assert dry.rc == 0, dry.err
    for line in (
        "+ sources nvd: create",
        "+ sources osv: create",
        "+ schedules nvd-hourly",
        "+ quotas advisory.fetch",
        "+ buckets services.nvd.nist.gov",
        "+ blackouts",
        "+ webhooks",
    ):
        assert line in dry.out, dry.out
    assert "dry run: 8 change(s) would be made, none made" in dry.out
    assert await _export(sites["b"], token, keys, tmp_path / "b1.tar") == empty

    applied = await _import(sites["b"], token, keys, tmp_path / "a1.tar")
    assert applied.rc == 0, applied.err
    assert "applied 8 change(s)" in applied.out
    assert applied.out.count("new signing secret (shown once): whsec_") == 2
    assert await _export(sites["b"], token, keys, tmp_path / "b2.tar") == first

    twice = await _import(sites["b"], token, keys, tmp_path / "a1.tar")
    assert twice.rc == 0, twice.err
    assert "nothing to change" in twice.out
    assert "+ " not in twice.out
    assert "~ " not in twice.out
    assert await _export(sites["b"], token, keys, tmp_path / "b3.tar") == first


async def test_a_changed_record_is_planned_as_an_update_and_extras_are_left_alone(
    sites, keys, make_token, tmp_path
) -> None:
    token = make_token("acme", SCOPES)
    kit = tmp_path / "kit.tar"
    original = await _export(sites["a"], token, keys, kit)
    md = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(sites["b"].scheduler) as ch:
        sched = scheduler_pb2_grpc.SchedulerServiceStub(ch)
        quota = next(
            q
            for q in (await sched.ListQuotas(scheduler_pb2.ListQuotasRequest(), metadata=md)).quotas
            if q.job_type == "advisory.fetch"
        )
        changed = resources_pb2.Quota(id=quota.id, max_active=1)
        request = scheduler_pb2.UpdateQuotaRequest(quota=changed, operator=OPERATOR)
        request.update_mask.paths.append("max_active")
        await sched.UpdateQuota(request, metadata=md)
        nvd = next(
            s
            for s in (
                await sched.ListSources(scheduler_pb2.ListSourcesRequest(), metadata=md)
            ).sources
            if s.name == "nvd"
        )
        pause = scheduler_pb2.UpdateSourceRequest(
            source=resources_pb2.Source(id=nvd.id, paused=True, max_active=9), operator=OPERATOR
        )
        pause.update_mask.paths.extend(["paused", "max_active"])
        await sched.UpdateSource(pause, metadata=md)
        await sched.CreateSource(
            scheduler_pb2.CreateSourceRequest(
                source=resources_pb2.Source(
                    name="local-only", source_type="advisory", host="local.example.org"
                ),
                operator=OPERATOR,
            ),
            metadata=md,
        )
    dry = await _import(sites["b"], token, keys, kit, "--dry-run")
    assert "~ quotas advisory.fetch: update (max_active: 1 -> 8)" in dry.out, dry.out
    assert (
        "~ sources nvd: update (max_active: 9 -> 4; paused: true -> false; "
        'paused_reason: "kit test" -> ""; paused_ticket: "OPS-21" -> "")'
    ) in dry.out, dry.out
    assert "= sources local-only: only in the tenant (left alone)" in dry.out
    applied = await _import(sites["b"], token, keys, kit)
    assert "applied 2 change(s)" in applied.out, applied.out + applied.err
    after = _files(await _export(sites["b"], token, keys, tmp_path / "after.tar"))
    before = _files(original)
    assert b'"name":"local-only"' in after["config/sources.jsonl"]  # left alone
    kept = [
        line
        for line in after["config/sources.jsonl"].splitlines(keepends=True)
        if b'"name":"local-only"' not in line
    ]
    assert b"".join(kept) == before["config/sources.jsonl"]
    assert after["config/quotas.jsonl"] == before["config/quotas.jsonl"]


def _files(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


async def test_a_tampered_kit_is_refused_naming_what_failed(
    sites, keys, make_token, tmp_path
) -> None:
    token = make_token("acme", SCOPES)
    good = await _export(sites["a"], token, keys, tmp_path / "good.tar")
    files = _files(good)
    before = await _export(sites["b"], token, keys, tmp_path / "before.tar")

    flipped = bytearray(good)
    offset = good.index(b'"name":"nvd"') + 9
    flipped[offset] ^= 0x01
    removed = tar_bytes({k: v for k, v in files.items() if k != "config/quotas.jsonl"})
    edited = dict(files)
    edited["config/quotas.jsonl"] = files["config/quotas.jsonl"].replace(
        b'"max_active":8', b'"max_active":9'
    )
    resealed = tar_bytes(edited)
    bad_schema = build_kit(
        "acme",
        {"sources": [{"name": "x", "surprise": True}]},
        Signer.from_pem(keys["signer"].read_bytes()),
    ).archive
    cases = {
        "flipped byte": (flipped, "signer.pub", "config/sources.jsonl: sha256"),
        "removed member": (removed, "signer.pub", "archive: config/quotas.jsonl is missing"),
        "edited member": (resealed, "signer.pub", "config/quotas.jsonl: sha256"),
        "wrong key": (good, "stranger.pub", "manifest.dsse.json: no signature by the given key"),
        "bad schema": (bad_schema, "signer.pub", "config/sources.jsonl line 1: schema"),
    }
    for what, (archive, key, expected) in cases.items():
        path = tmp_path / f"{what.replace(' ', '_')}.tar"
        path.write_bytes(archive)
        verified = await _kit(token, "verify", str(path), "--key", str(keys[key]))
        assert verified.rc == 1, (what, verified)
        assert expected in verified.err, (what, verified.err)
        imported = await _kit(
            token, "import", str(path), *_targets(sites["b"]), "--key", str(keys[key])
        )
        assert imported.rc == 1, (what, imported)
        assert expected in imported.err, (what, imported.err)
        assert "refused" in imported.err
    assert await _export(sites["b"], token, keys, tmp_path / "after.tar") == before
    ok = await _kit(token, "verify", str(tmp_path / "good.tar"), "--key", str(keys["signer.pub"]))
    assert ok.rc == 0, ok
    assert ok.out.startswith("OK:"), ok


async def test_a_kit_carries_the_audit_bundle_of_a_time_range(
    sites, keys, make_token, tmp_path
) -> None:
    token = make_token("acme", SCOPES)
    now = datetime.now(UTC)
    window = [
        "--audit",
        sites["a"].audit,
        "--audit-from",
        (now - timedelta(days=1)).isoformat(),
        "--audit-to",
        (now + timedelta(days=1)).isoformat(),
    ]
    archive = await _export(sites["a"], token, keys, tmp_path / "audit.tar", *window)
    bundle = _files(archive)["audit/bundle.tar"]
    (tmp_path / "bundle.tar").write_bytes(bundle)
    (tmp_path / "audit.pub").write_text(Signer.development().public_key_pem)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stella_orchestrator",
        "orchestrator",
        "audit",
        "verify",
        str(tmp_path / "bundle.tar"),
        "--key",
        str(tmp_path / "audit.pub"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(CLI_TIMEOUT_S):
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert b"audit.chained" in bundle or b"history.jsonl" in bundle
    ok = await _kit(token, "verify", str(tmp_path / "audit.tar"), "--key", str(keys["signer.pub"]))
    assert ok.rc == 0, ok.err
