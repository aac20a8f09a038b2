"""Unit tests of the leases service: settings, wire conversion and the completer's batching
(in-memory fake ledger, no I/O)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from orchestrator_core import Aborted, Unavailable
from orchestrator_grpckit import ConfigError
from orchestrator_leases import LeaseSettings
from orchestrator_leases import _convert as convert
from orchestrator_leases._actor import Actor
from orchestrator_leases._completer import Completer, Kind
from orchestrator_pg import Outcome
from stella.orchestrator.v1 import common_pb2, leases_pb2
from tests.unit.leases._rows import lease_row

ACTOR = Actor("acme", "worker", ("orch:work",), ("acme",))


def test_settings_defaults_and_overrides():
    assert LeaseSettings.from_env({}) == LeaseSettings(30.0, 100, 1.0, 2.0)
    got = LeaseSettings.from_env(
        {
            "ORCH_LEASE_TTL_S": "5",
            "ORCH_CLAIM_BATCH": "250",
            "ORCH_WATCHDOG_INTERVAL_S": "0.5",
            "ORCH_COMPLETER_FLUSH_MS": "0",
        }
    )
    assert got == LeaseSettings(5.0, 250, 0.5, 0.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("ORCH_LEASE_TTL_S", "soon"), ("ORCH_CLAIM_BATCH", "501"), ("ORCH_LEASE_TTL_S", "nan")],
)
def test_settings_refuse_bad_values(name, value):
    with pytest.raises(ConfigError, match=name):
        LeaseSettings.from_env({name: value})


def test_assignment_idempotency_key_defaults_to_the_job_id():
    row = lease_row()
    msg = convert.assignment(row)
    assert msg.idempotency_key == f"orch-{row['id']}"
    assert msg.payload["url"] == "https://example.org"
    assert msg.lease_expires_at.ToDatetime(UTC) == row["lease_expires_at"]
    assert not msg.HasField("event_time_window")
    assert convert.assignment(lease_row(idempotency_key="mine")).idempotency_key == "mine"


def test_artifact_digest_must_be_lowercase_sha256():
    out = convert.Violations()
    msg = leases_pb2.ArtifactRecord(
        job_id=str(uuid.uuid4()), lease_id=str(uuid.uuid4()), name="a", digest="sha256:" + "A" * 64
    )
    convert.artifact(msg, "artifacts[0]", out)
    assert [v.field for v in out.items] == ["artifacts[0].digest"]


def test_completion_digest_is_computed_when_empty_and_artifacts_inherit_ids():
    out = convert.Violations()
    job, lease = str(uuid.uuid4()), str(uuid.uuid4())
    msg = leases_pb2.Completion(job_id=job, lease_id=lease)
    msg.result.update({"rows": 3})
    msg.artifacts.add(name="x", digest="sha256:" + "a" * 64)
    done = convert.completion(msg, "c", out)
    assert out.items == []
    assert done.result == {"rows": 3}
    assert done.result_digest.startswith("sha256:")
    assert [(str(a.job_id), str(a.lease_id)) for a in done.artifacts] == [(job, lease)]


def test_failure_error_class_labels():
    out = convert.Violations()
    msg = leases_pb2.Failure(job_id=str(uuid.uuid4()), lease_id=str(uuid.uuid4()))
    msg.error.error_class = common_pb2.ERROR_CLASS_HTTP_429
    msg.error.retry_after.FromSeconds(30)
    failure = convert.failure(msg, "f", out)
    assert (failure.error_class, failure.retry_after_s, failure.retryable) == (
        "http_429",
        30,
        False,
    )
    assert convert.error_class_name(common_pb2.ERROR_CLASS_UNSPECIFIED) == "other"


class FakeLedger:
    """Records each batch call; every write succeeds."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def _ok(self, name: str, items) -> list[Outcome]:
        await self.gate.wait()
        self.calls.append((name, len(items)))
        return [Outcome(i.job_id, i.lease_id, True) for i in items]

    async def lease_extend_many(self, ctx, items, *, tenants, lease_ttl_s):
        return await self._ok("heartbeat", items)

    async def job_complete_many(self, ctx, items, *, tenants):
        return await self._ok("complete", items)

    async def artifact_record_many(self, ctx, items, *, tenants):
        return await self._ok("artifacts", items)


class _Item:
    def __init__(self) -> None:
        self.job_id = uuid.uuid4()
        self.lease_id = uuid.uuid4()


async def test_completer_batches_submissions_into_one_call_per_kind_in_order():
    ledger = FakeLedger()
    completer = Completer(ledger, lease_ttl_s=30, flush_ms=20)  # type: ignore[arg-type]
    runner = asyncio.create_task(completer.run())
    try:
        futures = [
            await completer.submit(ACTOR, Kind.COMPLETION, [_Item(), _Item()]),
            await completer.submit(ACTOR, Kind.HEARTBEAT, [_Item()]),
            await completer.submit(ACTOR, Kind.COMPLETION, [_Item()]),
            await completer.submit(ACTOR, Kind.ARTIFACT, [_Item()]),
        ]
        results = await asyncio.gather(*futures)
    finally:
        runner.cancel()
    assert [len(r) for r in results] == [2, 1, 1, 1]
    assert ledger.calls == [("heartbeat", 1), ("artifacts", 1), ("complete", 3)]


class RepeatingLedger(FakeLedger):
    """Completions succeed; those already applied come back as repeats (a resent result)."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: set[uuid.UUID] = set()

    async def job_complete_many(self, ctx, items, *, tenants):
        out = []
        for i in items:
            repeated = i.job_id in self.applied
            self.applied.add(i.job_id)
            out.append(
                Outcome(i.job_id, i.lease_id, True, new_state="succeeded", repeated=repeated)
            )
        return out


async def test_a_resent_completion_is_acknowledged_but_counted_once(monkeypatch) -> None:
    from orchestrator_leases import _completer

    # A counter of this test's own: the process-wide one also counts other tests' services.
    counted = Counter("orch_test_leases_completed", "completions", registry=CollectorRegistry())
    monkeypatch.setattr(_completer.metrics, "LEASES_COMPLETED", counted)
    ledger = RepeatingLedger()
    ended: list[int] = []
    completer = Completer(ledger, lease_ttl_s=30, flush_ms=1)  # type: ignore[arg-type]
    completer.on_leases_ended = lambda: ended.append(1)
    runner = asyncio.create_task(completer.run())
    try:
        items = [_Item(), _Item()]
        first = await (await completer.submit(ACTOR, Kind.COMPLETION, items))
        again = await (await completer.submit(ACTOR, Kind.COMPLETION, items[:1]))
    finally:
        runner.cancel()
    assert all(o.ok for o in first + again)
    assert [o.repeated for o in again] == [True]
    assert counted._value.get() == 2
    assert ended == [1]  # the resend ended no lease


async def test_completer_backlog_applies_backpressure():
    ledger = FakeLedger()
    ledger.gate.clear()
    completer = Completer(  # type: ignore[arg-type]
        ledger, lease_ttl_s=30, flush_ms=0, flush_items=2, max_backlog=2
    )
    runner = asyncio.create_task(completer.run())
    try:
        first = await completer.submit(ACTOR, Kind.COMPLETION, [_Item(), _Item()])
        await asyncio.sleep(0.01)  # the flush takes them and blocks on the gate
        second = await completer.submit(ACTOR, Kind.COMPLETION, [_Item(), _Item()])
        third = asyncio.ensure_future(completer.submit(ACTOR, Kind.COMPLETION, [_Item()]))
        await asyncio.sleep(0.02)
        assert not third.done(), "a full backlog must make submit wait"
        ledger.gate.set()
        await asyncio.gather(first, second, await third)
    finally:
        runner.cancel()


class FlakyLedger(FakeLedger):
    """Fails its first ``failures`` complete calls with ``error``."""

    def __init__(self, failures: int, error: Exception) -> None:
        super().__init__()
        self.failures = failures
        self.error = error
        self.attempts = 0

    async def job_complete_many(self, ctx, items, *, tenants):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        return await self._ok("complete", items)


@pytest.mark.parametrize(
    "error", [Aborted("deadlock detected; retry"), Unavailable("connection lost; retry")]
)
async def test_completer_retries_a_transient_database_failure(error: Exception) -> None:
    failures = random.randint(1, 3)
    ledger = FlakyLedger(failures, error)
    completer = Completer(  # type: ignore[arg-type]
        ledger, lease_ttl_s=30, flush_ms=0, rng=random.Random(7)
    )
    kind = type(error).__name__.lower()
    before = REGISTRY.get_sample_value("orch_leases_completer_retries_total", {"kind": kind}) or 0.0
    runner = asyncio.create_task(completer.run())
    try:
        items = [_Item(), _Item()]
        outcomes = await (await completer.submit(ACTOR, Kind.COMPLETION, items))
    finally:
        runner.cancel()
    assert [o.ok for o in outcomes] == [True, True]
    assert ledger.attempts == failures + 1
    after = REGISTRY.get_sample_value("orch_leases_completer_retries_total", {"kind": kind})
    assert after == before + failures


async def test_completer_gives_up_after_its_retry_window_and_on_other_errors() -> None:
    # Still unavailable when the window closes: the waiting sessions get the error.
    ledger = FlakyLedger(10_000, Unavailable("connection lost; retry"))
    completer = Completer(  # type: ignore[arg-type]
        ledger, lease_ttl_s=30, flush_ms=0, retry_for_s=0.3, rng=random.Random(7)
    )
    runner = asyncio.create_task(completer.run())
    try:
        with pytest.raises(Unavailable):
            await (await completer.submit(ACTOR, Kind.COMPLETION, [_Item()]))
        assert 2 <= ledger.attempts < 10_000
        # A bug is not retried.
        ledger.attempts, ledger.error = 0, RuntimeError("bug")
        with pytest.raises(RuntimeError):
            await (await completer.submit(ACTOR, Kind.COMPLETION, [_Item()]))
        assert ledger.attempts == 1
    finally:
        runner.cancel()


async def test_a_draining_session_refuses_assignments_so_they_are_released() -> None:
    from orchestrator_leases._session import WorkSession

    session = WorkSession(
        session_id="s",
        worker_id="w",
        actor=ACTOR,
        job_types=("t",),
        capacity=5,
        completer=None,  # type: ignore[arg-type]
        ledger=None,  # type: ignore[arg-type]
        dispatcher=None,  # type: ignore[arg-type]
    )
    rows = [lease_row(), lease_row()]
    assert session.deliver(rows[:1], convert.assignment)
    assert session.in_flight == 1
    # A claim in flight when the drain begins comes back refused: the dispatcher releases it.
    session.drain_from_server("rebalance")
    assert not session.deliver(rows[1:], convert.assignment)
    assert (session.in_flight, len(session.leases)) == (1, 1)
    assert session.free_slots == 0
