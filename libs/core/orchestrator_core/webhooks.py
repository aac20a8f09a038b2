"""Webhooks: the pure rules (docs/webhooks.md) — which events a subscription receives, what a
delivery's body is, how an attempt's result is classified, when to retry, which targets are
refused (SSRF) and when a failing subscription is disabled.

The dispatcher (``orchestrator_scheduler/_webhooks.py``) applies them; the storage is
``orchestrator_pg.WebhookStore``; the signatures are ``stella_orchestrator.webhooks`` (one
module shared with receivers).
"""

from __future__ import annotations

import enum
import ipaddress
import json
import random
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from orchestrator_core.errors import FieldViolation, InvalidArgument
from orchestrator_core.retry import RetryPolicy, backoff_s

__all__ = [
    "ALIASES",
    "DEFAULT_DISABLE_POLICY",
    "DEFAULT_RETRY_POLICY",
    "AttemptResult",
    "DisablePolicy",
    "Outcome",
    "WebhookAttempt",
    "WebhookEvent",
    "WebhookSubscription",
    "classify",
    "delivery_body",
    "expand_types",
    "matches",
    "next_attempt_delay_s",
    "refused_address",
    "validate_subscription",
]

MAX_EVENT_TYPES = 32
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 1000
# Subscription names for event families that have no single event type.
ALIASES: Mapping[str, tuple[str, ...]] = {
    "run.finished": ("run.succeeded", "run.failed", "run.canceled"),
}
# A type ("job.dead"), a family ("job." matches every job.* type) or everything ("*").
_TYPE_RE = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.?)$")
# A Retry-After longer than this is taken as this: a receiver cannot park a delivery for days.
RETRY_AFTER_MAX_S = 3600.0

DEFAULT_RETRY_POLICY = RetryPolicy(
    max_attempts=8, initial_backoff_s=10.0, max_backoff_s=3600.0, multiplier=3.0
)


@dataclass(frozen=True, slots=True)
class DisablePolicy:
    """When a failing subscription is disabled: ``streak`` failed attempts in a row (no 2xx
    in between) whose first failure is at least ``after`` old. Both must hold, so neither a
    burst of first attempts nor one slow trickle of failures disables it by itself."""

    streak: int = 50
    after: timedelta = timedelta(hours=1)


DEFAULT_DISABLE_POLICY = DisablePolicy()


class Outcome(enum.StrEnum):
    """What one attempt came to (``webhook_attempts.outcome``)."""

    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    """What the fan-out needs of a subscription."""

    id: uuid.UUID
    tenant: str
    event_types: tuple[str, ...]
    source_id: uuid.UUID | None = None
    job_type: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One committed event as the fan-out reads it."""

    seq: int
    event_id: uuid.UUID
    tenant: str
    type: str
    occurred_at: datetime
    fields: Mapping[str, Any]

    @property
    def source_id(self) -> uuid.UUID | None:
        value = self.fields.get("source_id")
        return value if isinstance(value, uuid.UUID) else None

    @property
    def job_type(self) -> str | None:
        value = self.fields.get("job_type")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    """One claimed attempt: where to send what, signed with which secrets."""

    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    tenant: str
    attempt: int
    url: str
    secrets: tuple[str, ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What came back from one attempt (``status`` None: no HTTP answer, see ``error``)."""

    status: int | None
    latency_ms: int
    error: str = ""
    retry_after_s: float | None = None


def expand_types(types: Iterable[str]) -> tuple[str, ...]:
    """Subscription types with aliases replaced by what they stand for."""
    out: list[str] = []
    for t in types:
        out.extend(ALIASES.get(t, (t,)))
    return tuple(dict.fromkeys(out))


def _type_matches(patterns: Iterable[str], event_type: str) -> bool:
    for p in expand_types(patterns):
        if p == "*" or p == event_type or (p.endswith(".") and event_type.startswith(p)):
            return True
    return False


def matches(sub: WebhookSubscription, event: WebhookEvent) -> bool:
    """Whether ``sub`` receives ``event``: same tenant, a matching type, and the source and
    job type filters (when set) equal to the event's. ``webhook.*`` events about a
    subscription are never sent to that subscription (it failed; it would fail again)."""
    if sub.tenant != event.tenant or not _type_matches(sub.event_types, event.type):
        return False
    if sub.source_id is not None and event.source_id != sub.source_id:
        return False
    if sub.job_type is not None and event.job_type != sub.job_type:
        return False
    return not (
        event.type.startswith("webhook.")
        and str(event.fields.get("data", {}).get("webhook_id")) == str(sub.id)
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def delivery_body(event: WebhookEvent) -> dict[str, Any]:
    """The JSON body of a delivery: ``{"type", "timestamp", "data"}`` as the Standard
    Webhooks specification recommends; ``data`` holds the event's fields (ids as strings,
    times as ISO 8601) plus ``event_id`` and ``seq``. Null fields are left out."""
    data = {k: _jsonable(v) for k, v in event.fields.items() if v is not None}
    data["event_id"] = str(event.event_id)
    data["seq"] = event.seq
    data["tenant"] = event.tenant
    return {"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": data}


def body_bytes(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (sorted keys, compact): every attempt sends the same bytes."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after", "").strip()
    if raw.isdigit():
        return min(float(raw), RETRY_AFTER_MAX_S)
    return None  # an HTTP date or garbage: the backoff alone decides


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` delay in seconds (delta-seconds form; capped), if any."""
    return _retry_after({k.lower(): v for k, v in headers.items()})


def classify(result: AttemptResult, attempt: int, policy: RetryPolicy) -> Outcome:
    """2xx succeeded; 5xx, 408, 429, a timeout or a connection error are retried until the
    policy's attempts run out; anything else (3xx: redirects are not followed, other 4xx, a
    refused target) failed for good."""
    status = result.status
    if status is not None and 200 <= status < 300:
        return Outcome.SUCCEEDED
    retryable = status is None or status >= 500 or status in (408, 429)
    if result.error.startswith("refused:"):
        retryable = False
    if retryable and attempt < policy.max_attempts:
        return Outcome.RETRYING
    return Outcome.FAILED


def next_attempt_delay_s(
    policy: RetryPolicy, attempt: int, rng: random.Random, retry_after_s: float | None
) -> float:
    """Capped jittered exponential backoff after failed ``attempt``, never shorter than a
    ``Retry-After`` the receiver sent (itself capped at :data:`RETRY_AFTER_MAX_S`)."""
    if retry_after_s is not None:
        retry_after_s = min(max(retry_after_s, 0.0), RETRY_AFTER_MAX_S)
    return backoff_s(policy, attempt, rng, retry_after_s)


def refused_address(address: str) -> str | None:
    """Why an IP address is no webhook target (SSRF protection), or None when it may be:
    loopback, private (RFC 1918, ULA), link-local (cloud metadata at 169.254.169.254),
    shared, multicast, reserved and unspecified addresses are refused."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("unspecified", ip.is_unspecified),
        ("not globally routable", not ip.is_global),
    ):
        if flag:
            return f"{address} is {kind}"
    return None


def validate_subscription(
    *,
    url: str,
    event_types: Sequence[str],
    description: str = "",
    field_prefix: str = "",
) -> None:
    """Checks a subscription's fields and reports every problem at once.

    Raises:
        InvalidArgument: one ``FieldViolation`` per bad field.
    """
    violations: list[FieldViolation] = []
    parts = urlsplit(url)
    if len(url) > MAX_URL_LENGTH:
        violations.append(FieldViolation(f"{field_prefix}url", f"longer than {MAX_URL_LENGTH}"))
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        violations.append(
            FieldViolation(f"{field_prefix}url", f"must be an http(s) URL with a host: {url!r}")
        )
    elif parts.username or parts.password:
        violations.append(FieldViolation(f"{field_prefix}url", "must not carry credentials"))
    if not event_types:
        violations.append(FieldViolation(f"{field_prefix}event_types", "at least one is needed"))
    elif len(event_types) > MAX_EVENT_TYPES:
        violations.append(
            FieldViolation(f"{field_prefix}event_types", f"at most {MAX_EVENT_TYPES}")
        )
    for i, t in enumerate(event_types):
        if not _TYPE_RE.match(t):
            violations.append(
                FieldViolation(
                    f"{field_prefix}event_types[{i}]",
                    f"{t!r} is no event type (e.g. 'job.dead'), family ('job.') or '*'",
                )
            )
    if len(description) > MAX_DESCRIPTION_LENGTH:
        violations.append(
            FieldViolation(f"{field_prefix}description", f"longer than {MAX_DESCRIPTION_LENGTH}")
        )
    if violations:
        raise InvalidArgument("invalid webhook subscription", violations)
