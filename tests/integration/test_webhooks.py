"""Webhooks against real PostgreSQL and a real HTTP receiver on loopback.

Events come from the real hot path (RunStore creates a run, LeaseLedger claims, completes
and fails its jobs: the triggers write run.* and job.* events); dispatchers run their real
loops behind a real EventHorizon and POST over HTTP to a receiver in this process. Every
delivery is checked with the SDK's verifier and with the independent ``standardwebhooks``
package. Loopback targets need ``allow_private`` (ORCH_WEBHOOKS_ALLOW_PRIVATE=1), except in
the SSRF test.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import standardwebhooks

from orchestrator_core import NotFound, RetryPolicy, payload_digest
from orchestrator_core.webhooks import DisablePolicy
from orchestrator_pg import (
    Completion,
    Database,
    EventHorizon,
    Failure,
    JobStore,
    LeaderLoop,
    LeaseLedger,
    NewJob,
    NewRun,
    RunStore,
    TxContext,
    WebhookFields,
    WebhookStore,
)
from orchestrator_scheduler._webhooks import WebhookDispatcher, WebhookSettings
from stella_orchestrator.webhooks import generate_secret, verify_webhook
from tests.conftest import eventually, migrated_database

pytestmark = pytest.mark.integration

# Issue 21's acceptance run: 500 jobs (~8 s here); ORCH_TEST_WEBHOOK_JOBS varies it.
RUN_JOBS = int(os.environ.get("ORCH_TEST_WEBHOOK_JOBS", "500"))
FAST_RETRY = RetryPolicy(max_attempts=6, initial_backoff_s=0.05, max_backoff_s=0.2)
NO_DISABLE = DisablePolicy(streak=1_000_000)
OPERATOR = TxContext(tenant="acme", actor_subject="alice", reason="wire the SIEM")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    at: float


@dataclass
class Receiver:
    """An HTTP/1.1 server on loopback that records every request and answers with
    ``respond(webhook_id, nth request of that id) -> (status, extra headers)``."""

    respond: Callable[[str, int], tuple[int, dict[str, str]]]
    requests: list[Received] = field(default_factory=list)
    seen: collections.Counter[str] = field(default_factory=collections.Counter)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                msg_id = headers.get("webhook-id", "")
                self.seen[msg_id] += 1
                status, extra = self.respond(msg_id, self.seen[msg_id])
                self.requests.append(Received(headers, body, status, time.monotonic()))
                extra_lines = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n{extra_lines}\r\n".encode()
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield self
            server.close()


@pytest.fixture(scope="module")
def webhooks_db(admin_url: str) -> Iterator[str]:
    with migrated_database(admin_url, "orch_wh", ("acme", "globex")) as url:
        yield url


@pytest.fixture
async def db(webhooks_db: str) -> AsyncIterator[Database]:
    async with Database(webhooks_db) as database:
        yield database


@pytest.fixture
def sql(webhooks_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(webhooks_db, autocommit=True) as conn:
        conn.execute("DELETE FROM orchestrator.webhooks")  # each test subscribes anew
        yield conn


@asynccontextmanager
async def dispatchers(
    db: Database, url: str, settings: WebhookSettings, keys: tuple[int | None, ...] = (None,)
) -> AsyncIterator[list[WebhookDispatcher]]:
    """Dispatchers (one per lock key; None: the real WEBHOOKS key) behind one horizon, running
    until the block ends; returns once each leader's cursor caught up with the horizon."""
    horizon = EventHorizon(url)
    running = [
        WebhookDispatcher(WebhookStore(db), horizon, url, settings=settings, lock_key=k)
        for k in keys
    ]
    async with AsyncExitStack() as stack:
        tasks = [asyncio.create_task(horizon.run())]
        tasks += [asyncio.create_task(d.run_forever()) for d in running]

        async def stop() -> None:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        stack.push_async_callback(stop)
        await eventually(lambda: _true(horizon.seq >= 0), "the event horizon")
        start = horizon.seq
        await eventually(
            lambda: _true(any(d.is_leader and d.cursor >= start for d in running)),
            "a dispatcher's first pass",
        )
        yield running


async def _true(value: bool) -> bool:
    return value


def _job(job_type: str, key: str = "") -> NewJob:
    return NewJob(
        id=uuid.uuid4(),
        job_type=job_type,
        payload={},
        payload_digest=payload_digest({}),
        retry_policy=RetryPolicy(max_attempts=1),
        key=key,
    )


async def _run(db: Database, tenant: str, n: int, dead_every: int) -> uuid.UUID:
    """A run of ``n`` jobs, every ``dead_every``-th failing for good (job.dead), the others
    succeeding; the run finishes (run.failed)."""
    job_type = f"w{uuid.uuid4().hex[:10]}.fetch"
    ctx = TxContext(tenant=tenant, actor_subject="producer")
    created = await RunStore(db).run_create(
        ctx, NewRun(id=uuid.uuid4(), name="webhooks"), [_job(job_type, f"k{i}") for i in range(n)]
    )
    ledger = LeaseLedger(db)
    worker = TxContext(tenant=tenant, actor_subject="worker")
    leased = await ledger.job_claim_batch(
        worker, worker_id="w", job_types=[job_type], limit=n, tenants=[tenant]
    )
    assert len(leased) == n
    dead = [r for i, r in enumerate(leased) if i % dead_every == 0]
    done = [r for i, r in enumerate(leased) if i % dead_every != 0]
    failures = [Failure(r["id"], r["lease_id"], "http_5xx", "boom", retryable=False) for r in dead]
    assert all(o.ok for o in await ledger.job_fail_many(worker, failures, tenants=[tenant]))
    completions = [Completion(r["id"], r["lease_id"]) for r in done]
    assert all(o.ok for o in await ledger.job_complete_many(worker, completions, tenants=[tenant]))
    run_id: uuid.UUID = created.run["id"]
    return run_id


async def _submit(db: Database, tenant: str, n: int = 1) -> str:
    job_type = f"w{uuid.uuid4().hex[:10]}.fetch"
    await JobStore(db).job_submit(
        TxContext(tenant=tenant, actor_subject="producer"), [_job(job_type) for _ in range(n)]
    )
    return job_type


def _verify_both(secret: str, r: Received) -> dict[str, Any]:
    ours = verify_webhook(secret, r.body, r.headers)
    theirs = standardwebhooks.Webhook(secret).verify(r.body, r.headers)
    assert ours == theirs
    return ours  # type: ignore[no-any-return]


def _settings(**kw: Any) -> WebhookSettings:
    base: dict[str, Any] = {"allow_private": True, "retry": FAST_RETRY, "disable": NO_DISABLE}
    return WebhookSettings(**{**base, **kw})


async def test_every_matching_event_arrives_once_as_2xx_after_two_failures(
    db: Database, webhooks_db: str, sql: Any
) -> None:
    """Issue 21's acceptance shape: the receiver fails the first two attempts of every
    message (500, then 503 with Retry-After: 1) and answers 200 to the third. Three
    dispatchers run: two bid for the one WEBHOOKS lock, the third holds a lock of its own, so
    two leaders act at once; still no attempt is sent twice."""

    def respond(msg_id: str, nth: int) -> tuple[int, dict[str, str]]:
        return {1: (500, {}), 2: (503, {"retry-after": "1"})}.get(nth, (200, {}))

    store = WebhookStore(db)
    async with (
        Receiver(respond).running() as receiver,
        dispatchers(db, webhooks_db, _settings(), (None, None, LeaderLoop.WEBHOOKS.key + 0x100)),
    ):
        sub = await store.webhook_create(
            OPERATOR,
            WebhookFields(url=receiver.url, event_types=("run.finished", "job.dead")),
            generate_secret(),
        )
        other = await store.webhook_create(
            TxContext(tenant="globex", actor_subject="bob"),
            WebhookFields(url=receiver.url, event_types=("job.", "run.")),
            generate_secret(),
        )
        run_id = await _run(db, "acme", RUN_JOBS, dead_every=10)
        expected = {
            str(row[0])
            for row in sql.execute(
                "SELECT event_id FROM orchestrator.events WHERE tenant = 'acme' AND "
                "((type = 'job.dead' AND run_id = %s) OR (type LIKE 'run.%%' AND run_id = %s "
                "AND type IN ('run.succeeded', 'run.failed', 'run.canceled')))",
                (run_id, run_id),
            )
        }
        assert len(expected) == RUN_JOBS // 10 + 1

        async def all_delivered() -> bool:
            (n,) = sql.execute(
                "SELECT count(*) FROM orchestrator.webhook_deliveries "
                "WHERE webhook_id = %s AND state = 'succeeded'",
                (sub["id"],),
            ).fetchone()
            return bool(n == len(expected))

        await eventually(all_delivered, f"{len(expected)} succeeded deliveries")

    by_id: dict[str, list[Received]] = collections.defaultdict(list)
    for r in receiver.requests:
        by_id[r.headers["webhook-id"]].append(r)
    ok_events = []
    for msg_id, got in by_id.items():
        assert [r.status for r in got] == [500, 503, 200], msg_id  # each attempt once
        assert got[2].at - got[1].at >= 1.0  # Retry-After honoured
        assert len({r.body for r in got}) == 1  # every attempt sends the same bytes
        event = _verify_both(sub["secret"], got[2])
        assert event["type"] in ("job.dead", "run.failed")
        ok_events.append(event["data"]["event_id"])
    assert sorted(ok_events) == sorted(expected)  # every matching event, exactly once
    assert other["id"] not in {
        row[0] for row in sql.execute("SELECT webhook_id FROM orchestrator.webhook_deliveries")
    }  # globex's subscription saw nothing of acme's run
    rows = sql.execute(
        "SELECT a.outcome, count(*) FROM orchestrator.webhook_attempts a "
        "JOIN orchestrator.webhook_deliveries d ON d.id = a.delivery_id "
        "WHERE d.webhook_id = %s GROUP BY a.outcome",
        (sub["id"],),
    ).fetchall()
    assert dict(rows) == {"retrying": 2 * len(expected), "succeeded": len(expected)}
    log = await store.webhook_delivery_list("acme", sub["id"], limit=1000)
    assert {r["state"] for r in log} == {"succeeded"}
    assert all(r["status_code"] == 200 and r["attempt"] == 3 for r in log)
    assert all(r["latency_ms"] is not None for r in log)


async def test_private_targets_are_refused_without_the_switch(
    db: Database, webhooks_db: str, sql: Any
) -> None:
    receiver = Receiver(lambda _id, _n: (200, {}))
    store = WebhookStore(db)
    async with (
        receiver.running(),
        dispatchers(db, webhooks_db, _settings(allow_private=False)),
    ):
        sub = await store.webhook_create(
            OPERATOR, WebhookFields(url=receiver.url, event_types=("job.",)), generate_secret()
        )
        await _submit(db, "acme")

        async def failed() -> list[Any]:
            rows = await store.webhook_delivery_list("acme", sub["id"], limit=10)
            return [r for r in rows if r["state"] == "failed"]

        rows = await eventually(failed, "the refused delivery")
    assert receiver.requests == []
    assert rows[0]["attempt"] == 1  # refused for good, not retried
    assert rows[0]["error"].startswith("refused: 127.0.0.1 is loopback")


async def test_a_failure_streak_disables_the_subscription_with_an_event(
    db: Database, webhooks_db: str, sql: Any
) -> None:
    receiver = Receiver(lambda _id, _n: (500, {}))
    store = WebhookStore(db)
    settings = _settings(
        retry=RetryPolicy(max_attempts=20, initial_backoff_s=0.05, max_backoff_s=0.1),
        disable=DisablePolicy(streak=4, after=timedelta(0)),
    )
    async with receiver.running(), dispatchers(db, webhooks_db, settings) as running:
        sub = await store.webhook_create(
            OPERATOR,
            WebhookFields(url=receiver.url, event_types=("job.created",)),
            generate_secret(),
        )
        await _submit(db, "acme")  # one delivery, failing attempt after attempt

        async def disabled() -> bool:
            row = await store.webhook_get("acme", sub["id"])
            return not row["enabled"]

        await eventually(disabled, "the subscription to be disabled")
        row = await store.webhook_get("acme", sub["id"])
        await _submit(db, "acme", 2)  # no deliveries for a disabled subscription
        (head,) = sql.execute("SELECT max(seq) FROM orchestrator.events").fetchone()
        await eventually(
            lambda: _true(any(d.cursor >= head for d in running)), "the fan-out past the jobs"
        )
        deliveries = await store.webhook_delivery_list("acme", sub["id"], limit=10)
        events = sql.execute(
            "SELECT reason, data FROM orchestrator.events WHERE type = 'webhook.disabled' "
            "AND data->>'webhook_id' = %s",
            (str(sub["id"]),),
        ).fetchall()
    assert row["disabled_reason"] == "failure_streak"
    assert row["failure_streak"] == 4
    assert len(receiver.requests) == 4
    assert len(deliveries) == 1
    assert deliveries[0]["attempt"] == 4
    assert deliveries[0]["state"] == "pending"  # kept: it resumes if the owner re-enables
    assert len(events) == 1
    assert events[0][0] == "failure_streak"
    assert events[0][1]["failure_streak"] == 4

    # enabling it again forgets the streak
    back = await store.webhook_update(OPERATOR, sub["id"], WebhookFields(enabled=True))
    assert back["enabled"]
    assert back["failure_streak"] == 0
    assert back["disabled_reason"] == ""


async def test_rotation_signs_with_both_secrets_and_redelivery_resends(
    db: Database, webhooks_db: str, sql: Any
) -> None:
    receiver = Receiver(lambda _id, _n: (204, {}))
    store = WebhookStore(db)
    async with receiver.running(), dispatchers(db, webhooks_db, _settings()):
        sub = await store.webhook_create(
            OPERATOR,
            WebhookFields(url=receiver.url, event_types=("job.created",)),
            generate_secret(),
        )
        old = sub["secret"]
        rotated = await store.webhook_rotate_secret(
            OPERATOR, sub["id"], generate_secret(), timedelta(hours=1)
        )
        new = rotated["secret"]
        assert new != old
        assert rotated["rotating"]
        await _submit(db, "acme")
        await eventually(lambda: _true(len(receiver.requests) == 1), "one delivery")
        (got,) = receiver.requests
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        assert _verify_both(old, got) == _verify_both(new, got)

        # the receiver has the request before the dispatcher records its answer
        async def recorded(attempts: int) -> dict[str, Any] | None:
            (delivery,) = await store.webhook_delivery_list("acme", sub["id"], limit=10)
            detail = await store.webhook_delivery_get("acme", delivery["id"])
            done = [a for a in detail["attempts"] if a["outcome"] != "sending"]
            return detail if delivery["attempt"] == attempts and len(done) == attempts else None

        await eventually(lambda: recorded(1), "the delivery's outcome")
        (delivery,) = await store.webhook_delivery_list("acme", sub["id"], limit=10)
        assert delivery["state"] == "succeeded"
        assert delivery["status_code"] == 204
        await store.webhook_redeliver(OPERATOR, delivery["id"])
        await eventually(lambda: _true(len(receiver.requests) == 2), "the redelivery")
        detail = await eventually(lambda: recorded(2), "the redelivery's outcome")
    again = receiver.requests[1]
    assert again.headers["webhook-id"] == got.headers["webhook-id"]
    assert again.body == got.body
    assert [a["attempt"] for a in detail["attempts"]] == [1, 2]
    assert {a["outcome"] for a in detail["attempts"]} == {"succeeded"}
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(generate_secret()).verify(got.body, got.headers)


async def test_the_first_pass_ever_delivers_what_a_subscription_is_owed(
    db: Database, webhooks_db: str, sql: Any
) -> None:
    """A subscription created before the dispatcher's first pass (a fresh install: no cursor
    stored) gets the events that occurred after it was created, and not the older ones. The
    first pass used to start at the horizon, past both."""
    sql.execute("DELETE FROM orchestrator.webhook_cursor")  # as before any pass
    receiver = Receiver(lambda _id, _n: (204, {}))
    store = WebhookStore(db)
    async with receiver.running():
        before = await _submit(db, "acme")
        sub = await store.webhook_create(
            OPERATOR,
            WebhookFields(url=receiver.url, event_types=("job.created",)),
            generate_secret(),
        )
        after = await _submit(db, "acme", n=2)
        async with dispatchers(db, webhooks_db, _settings()):
            await eventually(lambda: _true(len(receiver.requests) >= 2), "two deliveries")
            await asyncio.sleep(0.5)  # a delivery of the older event would come with them
        types = [json.loads(r.body)["data"]["job_type"] for r in receiver.requests]
        assert types == [after, after]
        assert before not in types
        assert len(await store.webhook_delivery_list("acme", sub["id"], limit=10)) == 2


async def test_operator_api_hides_secrets_isolates_tenants_and_is_audited(
    db: Database, sql: Any
) -> None:
    store = WebhookStore(db)
    created = await store.webhook_create(
        OPERATOR,
        WebhookFields(url="https://siem.example/hook", event_types=("job.dead",)),
        generate_secret(),
    )
    assert created["secret"].startswith("whsec_")
    listed = await store.webhook_list("acme", after=None, limit=10)
    assert [r["id"] for r in listed] == [created["id"]]
    assert all("secret" not in r and "previous_secret" not in r for r in listed)
    got = await store.webhook_get("acme", created["id"])
    assert "secret" not in got
    assert got["event_types"] == ["job.dead"]
    with pytest.raises(NotFound):
        await store.webhook_get("globex", created["id"])
    with pytest.raises(NotFound):
        await store.webhook_delete(TxContext(tenant="globex", actor_subject="eve"), created["id"])
    updated = await store.webhook_update(
        OPERATOR, created["id"], WebhookFields(description="SIEM", job_type="nvd.fetch")
    )
    assert updated["description"] == "SIEM"
    assert updated["job_type"] == "nvd.fetch"
    assert updated["url"] == "https://siem.example/hook"
    await store.webhook_delete(OPERATOR, created["id"])
    with pytest.raises(NotFound):
        await store.webhook_get("acme", created["id"])
    actions = [
        r[0]
        for r in sql.execute(
            "SELECT action FROM orchestrator.audit_entries WHERE target = %s ORDER BY occurred_at",
            (f"webhooks/{created['id']}",),
        )
    ]
    assert actions == ["webhook.create", "webhook.update", "webhook.delete"]


async def test_webhook_service_over_grpc_delivers_through_the_schedulers_dispatcher(
    db: Database, webhooks_db: str, sql: Any, make_token: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler service serves WebhookService and runs the dispatcher (ORCH_WEBHOOK*
    from the environment): create (secret once), read without secrets, deliveries listed,
    rotate, redeliver, update, delete; a reader cannot write."""
    import grpc

    from orchestrator_scheduler import build_service
    from stella.orchestrator.v1 import common_pb2, webhooks_pb2, webhooks_pb2_grpc
    from tests.conftest import service_config

    monkeypatch.setenv("ORCH_WEBHOOKS_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("ORCH_WEBHOOK_BACKOFF_S", "0.05")
    receiver = Receiver(lambda _id, _n: (200, {}))
    operate = (("authorization", f"Bearer {make_token('acme')}"),)
    read = (("authorization", f"Bearer {make_token('acme', ('orch:read',))}"),)
    operator = common_pb2.OperatorContext(reason="SIEM feed", ticket="OPS-21")
    async with (
        receiver.running(),
        build_service(service_config("scheduler", webhooks_db), schedule_firing=False) as service,
    ):
        await service.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
                stub = webhooks_pb2_grpc.WebhookServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as denied:
                    await stub.CreateWebhook(
                        webhooks_pb2.CreateWebhookRequest(url=receiver.url, event_types=["*"]),
                        metadata=read,
                    )
                assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
                with pytest.raises(grpc.aio.AioRpcError) as invalid:
                    await stub.CreateWebhook(
                        webhooks_pb2.CreateWebhookRequest(url="ftp://x", event_types=["Job"]),
                        metadata=operate,
                    )
                assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT

                created = await stub.CreateWebhook(
                    webhooks_pb2.CreateWebhookRequest(
                        url=receiver.url, event_types=["job.created"], operator=operator
                    ),
                    metadata=operate,
                )
                assert created.secret.startswith("whsec_")
                webhook_id = created.webhook.id
                listed = await stub.ListWebhooks(webhooks_pb2.ListWebhooksRequest(), metadata=read)
                assert [w.id for w in listed.webhooks] == [webhook_id]

                async def leading() -> bool:
                    (n,) = sql.execute(
                        "SELECT count(*) FROM orchestrator.webhook_cursor"
                    ).fetchone()
                    return bool(n)

                await eventually(leading, "the service's dispatcher to run")
                await _submit(db, "acme")
                await eventually(lambda: _true(len(receiver.requests) == 1), "the delivery")
                _verify_both(created.secret, receiver.requests[0])

                async def logged() -> Any:
                    reply = await stub.ListWebhookDeliveries(
                        webhooks_pb2.ListWebhookDeliveriesRequest(webhook_id=webhook_id),
                        metadata=read,
                    )
                    done = [d for d in reply.deliveries if d.state == "succeeded"]
                    return done

                (delivery,) = await eventually(logged, "the delivery log")
                assert delivery.status_code == 200
                assert delivery.attempt == 1
                assert delivery.event_type == "job.created"

                rotated = await stub.RotateWebhookSecret(
                    webhooks_pb2.RotateWebhookSecretRequest(
                        webhook_id=webhook_id, operator=operator
                    ),
                    metadata=operate,
                )
                assert rotated.webhook.rotating
                assert rotated.secret != created.secret
                again = await stub.RedeliverWebhook(
                    webhooks_pb2.RedeliverWebhookRequest(
                        delivery_id=delivery.id, operator=operator
                    ),
                    metadata=operate,
                )
                assert again.delivery.state == "pending"
                await eventually(lambda: _true(len(receiver.requests) == 2), "the redelivery")
                resent = receiver.requests[1]
                _verify_both(rotated.secret, resent)
                _verify_both(created.secret, resent)  # still valid during the grace period

                updated = await stub.UpdateWebhook(
                    webhooks_pb2.UpdateWebhookRequest(
                        webhook_id=webhook_id,
                        enabled=False,
                        description="paused",
                        operator=operator,
                    ),
                    metadata=operate,
                )
                assert not updated.webhook.enabled
                assert updated.webhook.disabled_reason == "operator"
                await stub.DeleteWebhook(
                    webhooks_pb2.DeleteWebhookRequest(webhook_id=webhook_id, operator=operator),
                    metadata=operate,
                )
                with pytest.raises(grpc.aio.AioRpcError) as gone:
                    await stub.GetWebhook(
                        webhooks_pb2.GetWebhookRequest(webhook_id=webhook_id), metadata=read
                    )
                assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        finally:
            await service.stop()
    actions = [
        r[0]
        for r in sql.execute(
            "SELECT action FROM orchestrator.audit_entries WHERE target LIKE 'webhook%%' "
            "AND actor_subject = 'tester' ORDER BY occurred_at"
        )
    ]
    assert actions == [
        "webhook.create",
        "webhook.rotate_secret",
        "webhook.redeliver",
        "webhook.update",
        "webhook.delete",
    ]
