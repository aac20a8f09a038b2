"""The shared pieces of the invalid-request tables (``test_invalid_arguments.py``): ids,
operator contexts, page tokens, message builders and :class:`Bad`.
"""

from __future__ import annotations

from dataclasses import dataclass

from envoy.extensions.common.ratelimit.v3 import ratelimit_pb2 as envoy_common_pb2
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.protobuf.message import Message

from stella.orchestrator.v1 import common_pb2 as C
from stella.orchestrator.v1 import leases_pb2 as L
from stella.orchestrator.v1 import ratelimit_pb2 as R
from stella.orchestrator.v1 import resources_pb2 as P

ID = "0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b"
ID2 = "0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5c"
NOT_UUID = "not-a-uuid"
ALMOST_UUID = ID[:-1]  # one digit short
DIGEST = "sha256:" + "ab" * 32
OP = C.OperatorContext(reason="servicer test", ticket="T-1")
TOO_LONG_TICKET = C.OperatorContext(reason="servicer test", ticket="t" * 129)
GARBAGE_TOKEN = "%%% not base64 %%%"
FOREIGN_TOKEN = "eyJhIjoiMDE5MGE2YjIiLCJmIjoiMDAwMDAwMDAwMDAwMDAwMCJ9"  # {"a":..,"f":"0000.."}


def ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


def dur(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(int(seconds * 1e9))
    return out


def window(start: int, end: int) -> C.TimeWindow:
    return C.TimeWindow(start=ts(start), end=ts(end))


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def job(**fields: object) -> P.JobSpec:
    spec = P.JobSpec(job_type="advisory.ingest")
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(spec, name).extend(value)
        elif isinstance(value, dict):
            getattr(spec, name).update(value)
        elif isinstance(value, Message):
            getattr(spec, name).CopyFrom(value)
        else:
            setattr(spec, name, value)
    return spec


def key(host: str = "h.example", tenant: str = "") -> R.BucketKey:
    return R.BucketKey(tenant=tenant, host=host)


def weekly(days: list[int], minute: int = 0, seconds: float = 3600) -> R.Blackout:
    return R.Blackout(
        start=ts(1000),
        recurrence=R.BlackoutRecurrence(
            weekly=R.WeeklyRecurrence(days=days, start_minute_utc=minute, duration=dur(seconds))
        ),
    )


def hello(
    worker_id: str = "w-1", capacity: int = 4, job_types: tuple[str, ...] = ("a.b",)
) -> L.WorkRequest:
    return L.WorkRequest(
        hello=L.WorkerHello(worker_id=worker_id, capacity=capacity, job_types=list(job_types))
    )


def descriptor(**entries: str) -> envoy_common_pb2.RateLimitDescriptor:
    return envoy_common_pb2.RateLimitDescriptor(
        entries=[
            envoy_common_pb2.RateLimitDescriptor.Entry(key=k, value=v) for k, v in entries.items()
        ]
    )


@dataclass(frozen=True)
class Bad:
    """A request that must be refused, the field its violation must name, and a label."""

    label: str
    request: Message | list[Message]
    field: str
