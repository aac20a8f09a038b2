"""The pure webhook rules: matching, bodies, attempt classification, backoff, SSRF."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import pytest

from orchestrator_core import InvalidArgument, RetryPolicy
from orchestrator_core.webhooks import (
    AttemptResult,
    Outcome,
    WebhookEvent,
    WebhookSubscription,
    body_bytes,
    classify,
    delivery_body,
    matches,
    next_attempt_delay_s,
    refused_address,
    retry_after_of,
    validate_subscription,
)

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SOURCE = uuid.uuid4()


def _event(type_: str, tenant: str = "acme", **fields: object) -> WebhookEvent:
    return WebhookEvent(1, uuid.uuid4(), tenant, type_, T0, {"data": {}, **fields})


def _sub(*types: str, **kw: object) -> WebhookSubscription:
    return WebhookSubscription(uuid.uuid4(), "acme", tuple(types), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("types", "event_type", "expected"),
    [
        (("job.dead",), "job.dead", True),
        (("job.dead",), "job.dead_letter", False),
        (("job.",), "job.retrying", True),
        (("job.",), "jobs.x", False),
        (("run.finished",), "run.failed", True),
        (("run.finished",), "run.running", False),
        (("*",), "incident.opened", True),
    ],
)
def test_types_families_aliases_and_everything(types, event_type, expected) -> None:
    assert matches(_sub(*types), _event(event_type)) is expected


def test_filters_and_tenants() -> None:
    sub = _sub("job.", source_id=SOURCE, job_type="nvd.fetch")
    assert matches(sub, _event("job.dead", source_id=SOURCE, job_type="nvd.fetch"))
    assert not matches(sub, _event("job.dead", source_id=uuid.uuid4(), job_type="nvd.fetch"))
    assert not matches(sub, _event("job.dead", source_id=SOURCE, job_type="osv.fetch"))
    assert not matches(_sub("*"), _event("job.dead", tenant="globex"))


def test_a_subscription_is_not_told_about_its_own_disabling() -> None:
    sub = _sub("*")
    own = _event("webhook.disabled", data={"webhook_id": str(sub.id)})
    assert not matches(sub, own)
    assert matches(sub, _event("webhook.disabled", data={"webhook_id": str(uuid.uuid4())}))


def test_body_is_standard_shape_and_stable_bytes() -> None:
    job = uuid.uuid4()
    event = _event("job.dead", job_id=job, reason=None, attempt=3)
    body = delivery_body(event)
    assert body["type"] == "job.dead"
    assert body["timestamp"] == T0.isoformat()
    assert body["data"]["job_id"] == str(job)
    assert "reason" not in body["data"]
    assert body_bytes(body) == body_bytes(json.loads(body_bytes(body)))


@pytest.mark.parametrize(
    ("status", "error", "attempt", "expected"),
    [
        (200, "", 1, Outcome.SUCCEEDED),
        (204, "", 8, Outcome.SUCCEEDED),
        (500, "", 1, Outcome.RETRYING),
        (429, "", 1, Outcome.RETRYING),
        (408, "", 1, Outcome.RETRYING),
        (None, "timeout: ReadTimeout", 1, Outcome.RETRYING),
        (None, "connection: refused", 1, Outcome.RETRYING),
        (503, "", 5, Outcome.FAILED),  # the policy's last attempt
        (404, "", 1, Outcome.FAILED),
        (301, "", 1, Outcome.FAILED),  # redirects are not followed
        (None, "refused: 10.0.0.1 is private", 1, Outcome.FAILED),
    ],
)
def test_classify(status, error, attempt, expected) -> None:
    policy = RetryPolicy(max_attempts=5)
    assert classify(AttemptResult(status, 10, error), attempt, policy) is expected


def test_backoff_is_capped_jittered_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_attempts=10, initial_backoff_s=1.0, max_backoff_s=8.0)
    rng = random.Random(7)
    delays = [next_attempt_delay_s(policy, 9, rng, None) for _ in range(200)]
    assert max(delays) <= 8.0
    assert len(set(delays)) > 100  # jittered
    assert next_attempt_delay_s(policy, 1, rng, 30.0) >= 30.0
    assert next_attempt_delay_s(policy, 1, rng, 10**9) <= 3600.0  # capped
    assert retry_after_of({"Retry-After": "12"}) == 12.0
    assert retry_after_of({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.0.1",
        "169.254.169.254",
        "fe80::1",
        "fd00::1",
        "100.64.0.1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_ssrf_refuses_non_global_addresses(address: str) -> None:
    assert refused_address(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111"])
def test_ssrf_allows_global_addresses(address: str) -> None:
    assert refused_address(address) is None


def test_validation_reports_every_problem() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_subscription(url="ftp://x", event_types=["job.dead", "Bad Type"], description="")
    fields = [v.field for v in caught.value.violations]
    assert fields == ["url", "event_types[1]"]
    validate_subscription(url="https://siem.example/hook", event_types=["run.finished", "job."])
    with pytest.raises(InvalidArgument):
        validate_subscription(url="https://u:p@siem.example/", event_types=["*"])
