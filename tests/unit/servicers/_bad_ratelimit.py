"""Invalid requests for the ratelimit service and its two Envoy listeners."""

from __future__ import annotations

from envoy.service.ratelimit.v3 import rls_pb2

from stella.orchestrator.v1 import common_pb2 as C
from stella.orchestrator.v1 import ratelimit_pb2 as R
from tests.unit.servicers._bad import (
    FOREIGN_TOKEN,
    GARBAGE_TOKEN,
    ID,
    NOT_UUID,
    OP,
    TOO_LONG_TICKET,
    Bad,
    descriptor,
    dur,
    key,
    ts,
    weekly,
)

RATELIMIT: dict[str, list[Bad]] = {
    "Acquire": [
        Bad("no-items", R.AcquireRequest(), "items"),
        Bad("too-many", R.AcquireRequest(items=[R.AcquireRequestItem(key=key())] * 1001), "items"),
        Bad(
            "no-host",
            R.AcquireRequest(items=[R.AcquireRequestItem(key=key(""))]),
            "items[0].key.host",
        ),
        Bad(
            "bad-host",
            R.AcquireRequest(items=[R.AcquireRequestItem(key=key("bad host"))]),
            "items[0].key.host",
        ),
        Bad(
            "tokens-over",
            R.AcquireRequest(items=[R.AcquireRequestItem(key=key(), tokens=1_000_001)]),
            "items[0].tokens",
        ),
        Bad(
            "tokens-negative",
            R.AcquireRequest(items=[R.AcquireRequestItem(key=key(), tokens=-1)]),
            "items[0].tokens",
        ),
        Bad(
            "source-id",
            R.AcquireRequest(items=[R.AcquireRequestItem(key=key(), source_id=NOT_UUID)]),
            "items[0].source_id",
        ),
        Bad(
            "request-clock",
            R.AcquireRequest(items=[R.AcquireRequestItem(key=key())], now=ts(1000)),
            "now",
        ),
    ],
    "ReportThrottle": [
        Bad("error-class", R.ReportThrottleRequest(key=key()), "error_class"),
        Bad(
            "other-class",
            R.ReportThrottleRequest(key=key(), error_class=C.ERROR_CLASS_TIMEOUT),
            "error_class",
        ),
        Bad(
            "no-host",
            R.ReportThrottleRequest(key=key(""), error_class=C.ERROR_CLASS_HTTP_429),
            "key.host",
        ),
        Bad(
            "retry-negative",
            R.ReportThrottleRequest(
                key=key(), error_class=C.ERROR_CLASS_HTTP_429, retry_after=dur(-1)
            ),
            "retry_after",
        ),
        Bad(
            "retry-over-a-day",
            R.ReportThrottleRequest(
                key=key(), error_class=C.ERROR_CLASS_HTTP_5XX, retry_after=dur(86401)
            ),
            "retry_after",
        ),
        Bad(
            "long-reason",
            R.ReportThrottleRequest(
                key=key(), error_class=C.ERROR_CLASS_HTTP_429, reason="r" * 257
            ),
            "reason",
        ),
        Bad(
            "job-id",
            R.ReportThrottleRequest(key=key(), error_class=C.ERROR_CLASS_HTTP_429, job_id=NOT_UUID),
            "job_id",
        ),
        Bad(
            "source-id",
            R.ReportThrottleRequest(
                key=key(), error_class=C.ERROR_CLASS_HTTP_429, source_id=NOT_UUID
            ),
            "source_id",
        ),
    ],
    "ConfigureBucket": [
        Bad(
            "negative-capacity",
            R.ConfigureBucketRequest(key=key(), capacity=-1, refill_per_second=1, operator=OP),
            "capacity",
        ),
        Bad(
            "zero-capacity",
            R.ConfigureBucketRequest(key=key(), refill_per_second=1, operator=OP),
            "capacity",
        ),
        Bad(
            "zero-refill",
            R.ConfigureBucketRequest(key=key(), capacity=10, operator=OP),
            "refill_per_second",
        ),
        Bad(
            "nan-refill",
            R.ConfigureBucketRequest(
                key=key(), capacity=10, refill_per_second=float("nan"), operator=OP
            ),
            "refill_per_second",
        ),
        Bad(
            "no-reason",
            R.ConfigureBucketRequest(key=key(), capacity=10, refill_per_second=1),
            "operator.reason",
        ),
        Bad(
            "bad-host",
            R.ConfigureBucketRequest(
                key=key("a_b c"), capacity=10, refill_per_second=1, operator=OP
            ),
            "key.host",
        ),
    ],
    "GetBucket": [
        Bad("bad-host", R.GetBucketRequest(key=key("Not A Host!")), "key.host"),
        Bad("trailing-dot", R.GetBucketRequest(key=key("h.example.")), "key.host"),
        Bad("port-letters", R.GetBucketRequest(key=key("h.example:http")), "key.host"),
    ],
    "ListBuckets": [
        Bad("negative-size", R.ListBucketsRequest(page_size=-1), "page_size"),
        Bad("garbage-token", R.ListBucketsRequest(page_token=GARBAGE_TOKEN), "page_token"),
    ],
    "SetThrottleOverride": [
        Bad("no-until", R.SetThrottleOverrideRequest(key=key(), operator=OP), "until"),
        Bad(
            "past-until",
            R.SetThrottleOverrideRequest(key=key(), until=ts(1000), operator=OP),
            "until",
        ),
        Bad(
            "negative-refill",
            R.SetThrottleOverrideRequest(
                key=key(), refill_per_second=-1, until=ts(4_000_000_000), operator=OP
            ),
            "refill_per_second",
        ),
        Bad(
            "no-reason",
            R.SetThrottleOverrideRequest(key=key(), until=ts(4_000_000_000)),
            "operator.reason",
        ),
        Bad(
            "source-id",
            R.SetThrottleOverrideRequest(
                key=key(), until=ts(4_000_000_000), operator=OP, source_id=NOT_UUID
            ),
            "source_id",
        ),
        Bad(
            "no-host",
            R.SetThrottleOverrideRequest(until=ts(4_000_000_000), operator=OP),
            "key.host",
        ),
    ],
    "ClearThrottleOverride": [
        Bad("no-host", R.ClearThrottleOverrideRequest(operator=OP), "key.host"),
        Bad("no-reason", R.ClearThrottleOverrideRequest(key=key()), "operator.reason"),
        Bad(
            "long-ticket",
            R.ClearThrottleOverrideRequest(key=key(), operator=TOO_LONG_TICKET),
            "operator.ticket",
        ),
    ],
    "GetCircuit": [
        Bad("no-host", R.GetCircuitRequest(), "key.host"),
        Bad("bad-host", R.GetCircuitRequest(key=key("-leading-dash")), "key.host"),
    ],
    "ListCircuits": [
        Bad("negative-size", R.ListCircuitsRequest(page_size=-1), "page_size"),
        Bad("foreign-token", R.ListCircuitsRequest(page_token=FOREIGN_TOKEN), "page_token"),
    ],
    "SetBlackout": [
        Bad(
            "reversed",
            R.SetBlackoutRequest(blackout=R.Blackout(start=ts(2000), end=ts(1000)), operator=OP),
            "blackout.end",
        ),
        Bad(
            "no-start",
            R.SetBlackoutRequest(blackout=R.Blackout(end=ts(1000)), operator=OP),
            "blackout.start",
        ),
        Bad(
            "no-end",
            R.SetBlackoutRequest(blackout=R.Blackout(start=ts(1000)), operator=OP),
            "blackout.end",
        ),
        Bad(
            "no-days",
            R.SetBlackoutRequest(blackout=weekly([]), operator=OP),
            "blackout.recurrence.weekly.days",
        ),
        Bad(
            "day-8",
            R.SetBlackoutRequest(blackout=weekly([1, 8]), operator=OP),
            "blackout.recurrence.weekly.days",
        ),
        Bad(
            "minute",
            R.SetBlackoutRequest(blackout=weekly([1], minute=1440), operator=OP),
            "blackout.recurrence.weekly.start_minute_utc",
        ),
        Bad(
            "duration",
            R.SetBlackoutRequest(blackout=weekly([1], seconds=0), operator=OP),
            "blackout.recurrence.weekly.duration",
        ),
        Bad(
            "cron",
            R.SetBlackoutRequest(
                blackout=R.Blackout(
                    start=ts(1000),
                    recurrence=R.BlackoutRecurrence(cron=R.CronRecurrence(expression="@daily")),
                ),
                operator=OP,
            ),
            "blackout.recurrence.cron",
        ),
        Bad(
            "id",
            R.SetBlackoutRequest(
                blackout=R.Blackout(id=NOT_UUID, start=ts(1000), end=ts(2000)), operator=OP
            ),
            "blackout.id",
        ),
        Bad(
            "no-reason",
            R.SetBlackoutRequest(blackout=R.Blackout(start=ts(1000), end=ts(2000))),
            "operator.reason",
        ),
    ],
    "ListBlackouts": [
        Bad("source-id", R.ListBlackoutsRequest(source_id=NOT_UUID), "source_id"),
        Bad("negative-size", R.ListBlackoutsRequest(page_size=-1), "page_size"),
        Bad("garbage-token", R.ListBlackoutsRequest(page_token=GARBAGE_TOKEN), "page_token"),
    ],
    "DeleteBlackout": [
        Bad("not-uuid", R.DeleteBlackoutRequest(blackout_id=NOT_UUID, operator=OP), "blackout_id"),
        Bad("empty", R.DeleteBlackoutRequest(operator=OP), "blackout_id"),
        Bad("no-reason", R.DeleteBlackoutRequest(blackout_id=ID), "operator.reason"),
    ],
}

_ENVOY_COMMON: list[Bad] = [
    Bad("no-descriptors", rls_pb2.RateLimitRequest(domain="acme"), "descriptors"),
    Bad(
        "too-many",
        rls_pb2.RateLimitRequest(domain="acme", descriptors=[descriptor(host="h.example")] * 65),
        "descriptors",
    ),
    Bad(
        "bad-host",
        rls_pb2.RateLimitRequest(domain="acme", descriptors=[descriptor(host="bad host")]),
        "descriptors[0].host",
    ),
    Bad(
        "second-bad-host",
        rls_pb2.RateLimitRequest(
            domain="acme", descriptors=[descriptor(host="h.example"), descriptor(host="x_y!")]
        ),
        "descriptors[1].host",
    ),
]
ENVOY: dict[str, list[Bad]] = {"ShouldRateLimit": _ENVOY_COMMON}
ENVOY_LISTENER: dict[str, list[Bad]] = {
    "ShouldRateLimit": [
        *_ENVOY_COMMON,
        # the token-less listener takes the tenant from the descriptors or the domain
        Bad(
            "no-tenant",
            rls_pb2.RateLimitRequest(descriptors=[descriptor(host="h.example")]),
            "descriptors[0].tenant",
        ),
        Bad(
            "brace-tenant",
            rls_pb2.RateLimitRequest(descriptors=[descriptor(tenant="{acme}", host="h.example")]),
            "descriptors[0].tenant",
        ),
    ]
}
