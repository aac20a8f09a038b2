"""Request validation of the rate-limit contract: every violation of a request is reported
at once (``BadRequest.field_violations``), before anything touches Redis or PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Mapping

from orchestrator_core import FieldViolation, InvalidArgument, PermissionDenied
from orchestrator_core.blackouts import MAX_WEEKLY_DURATION_S, Weekly
from orchestrator_grpckit import Principal, optional_datetime
from orchestrator_redis import BucketKey
from stella.orchestrator.v1 import common_pb2, ratelimit_pb2

MAX_ITEMS = 1000
MAX_TOKENS = 1_000_000
MAX_REASON = 256
MAX_TICKET = 128
MAX_RETRY_AFTER_S = 24 * 3600.0
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# A DNS name (or IP literal) with an optional port, like Source.host.
HOST_RE = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$"
    r"|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"
)


class Violations:
    """Collects field violations and raises them together."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self, message: str) -> None:
        if self.items:
            raise InvalidArgument(message, self.items)


def bucket_key(
    principal: Principal,
    value: ratelimit_pb2.BucketKey,
    field: str,
    out: Violations,
    *,
    host_required: bool = True,
) -> BucketKey | None:
    """The store key of a request key; its tenant must be the caller's (or empty).

    Raises:
        PermissionDenied: the key names another tenant.
    """
    tenant = value.tenant or principal.tenant
    if tenant != principal.tenant:
        raise PermissionDenied(
            f"{field}.tenant {value.tenant!r} is not the caller's tenant {principal.tenant!r}"
        )
    if not value.host:
        if host_required:
            out.add(f"{field}.host", "is required")
            return None
    elif not HOST_RE.match(value.host):
        out.add(f"{field}.host", "must be a host name or IP literal with an optional :port")
        return None
    return BucketKey(tenant, value.host)


def optional_id(value: str, field: str, out: Violations) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        out.add(field, "must be a UUID")
        return None


def text(value: str, field: str, out: Violations, limit: int) -> None:
    if len(value) > limit:
        out.add(field, f"must be at most {limit} characters")


def operator(
    value: common_pb2.OperatorContext, out: Violations, *, reason_required: bool = True
) -> None:
    """An operator's reason (required for control actions: it is audited) and ticket."""
    if reason_required and not value.reason.strip():
        out.add("operator.reason", "is required for this action: say why (it is audited)")
    text(value.reason, "operator.reason", out, MAX_REASON)
    text(value.ticket, "operator.ticket", out, MAX_TICKET)


def page_size(requested: int, out: Violations) -> int:
    if requested < 0:
        out.add("page_size", f"must be 0..{MAX_PAGE_SIZE}, got {requested}")
        return DEFAULT_PAGE_SIZE
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def list_tenant(principal: Principal, tenant: str) -> None:
    if tenant and tenant != principal.tenant:
        raise PermissionDenied(f"tenant {tenant!r} is not the caller's tenant {principal.tenant!r}")


def _fingerprint(filters: Mapping[str, object]) -> str:
    blob = json.dumps(filters, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def encode_token(last: str, filters: Mapping[str, object]) -> str:
    raw = json.dumps({"a": last, "f": _fingerprint(filters)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, filters: Mapping[str, object], out: Violations) -> str | None:
    """The last key of the previous page, or None for the first page."""
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
    except (ValueError, TypeError):
        data = None
    if (
        not isinstance(data, dict)
        or data.get("f") != _fingerprint(filters)
        or not isinstance(data.get("a"), str)
    ):
        out.add(
            "page_token",
            "pass the next_page_token of the previous page unchanged, with the same filters",
        )
        return None
    last: str = data["a"]
    return last


def blackout_fields(value: ratelimit_pb2.Blackout, out: Violations) -> dict[str, object]:
    """Columns of a blackout from the request (tenant, author and times come from the call)."""
    fields: dict[str, object] = {
        "id": optional_id(value.id, "blackout.id", out),
        "source_id": optional_id(value.source_id, "blackout.source_id", out),
    }
    start = optional_datetime(value, "start")
    end = optional_datetime(value, "end")
    if start is None:
        out.add("blackout.start", "is required")
    if end is not None and start is not None and end <= start:
        out.add("blackout.end", "must be after start")
    recurrence: Weekly | None = None
    if value.HasField("recurrence"):
        rule = value.recurrence.WhichOneof("rule")
        if rule == "weekly":
            weekly = value.recurrence.weekly
            days = list(weekly.days)
            if not days:
                out.add("blackout.recurrence.weekly.days", "must name at least one day")
            if any(d < 1 or d > 7 for d in days):
                out.add("blackout.recurrence.weekly.days", "must be WEEKDAY_MONDAY..SUNDAY")
            if not 0 <= weekly.start_minute_utc <= 1439:
                out.add("blackout.recurrence.weekly.start_minute_utc", "must be 0..1439")
            seconds = weekly.duration.ToTimedelta().total_seconds()
            if not 0 < seconds <= MAX_WEEKLY_DURATION_S:
                out.add(
                    "blackout.recurrence.weekly.duration",
                    f"must be positive and at most {MAX_WEEKLY_DURATION_S} s (a week)",
                )
            recurrence = Weekly(frozenset(days), weekly.start_minute_utc, seconds)
        elif rule == "cron":
            out.add(
                "blackout.recurrence.cron",
                "cron recurrences are not supported yet; use a weekly recurrence",
            )
        else:
            out.add("blackout.recurrence", "set weekly")
    elif end is None:
        out.add("blackout.end", "is required without a recurrence")
    text(value.reason, "blackout.reason", out, MAX_REASON)
    text(value.ticket, "blackout.ticket", out, MAX_TICKET)
    fields.update(
        start_at=start,
        end_at=end,
        recurrence=recurrence.to_json() if recurrence is not None else None,
    )
    return fields
