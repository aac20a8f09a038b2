"""Error mapping of the servicers, through the services' real error and auth interceptors on
a ``grpc_testing`` server (``_chain.py``), without network or database:

* a domain error raised by storage reaches the caller as its gRPC status with its
  ``google.rpc`` details (one valid RPC per servicer, unary and streaming);
* an unexpected exception is INTERNAL and its message does not leak;
* authentication and scopes are enforced before any servicer code runs, on every RPC;
* the servicer-level refusals that are not INVALID_ARGUMENT (another tenant's bucket key, a
  worker token's job types, an unknown audit key) and the rate limiter's Redis mapping.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from envoy.extensions.common.ratelimit.v3 import ratelimit_pb2 as envoy_common_pb2
from envoy.service.ratelimit.v3 import rls_pb2
from google.protobuf import message_factory
from google.protobuf.message import Message

from orchestrator_core import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    IllegalTransition,
    InvalidArgument,
    LeaseLost,
    NotFound,
    PermissionDenied,
    PreconditionViolation,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from orchestrator_core.states import JobState
from orchestrator_grpckit._status import ERROR_DOMAIN
from orchestrator_ratelimit import _metrics as ratelimit_metrics
from orchestrator_ratelimit._limiter import Backend, Limiter
from orchestrator_ratelimit._servicer import RateLimitServicer
from orchestrator_ratelimit._settings import RatelimitSettings
from orchestrator_redis import InvalidBucketArgument, RedisUnavailable
from stella.orchestrator.v1 import audit_pb2 as A
from stella.orchestrator.v1 import events_pb2 as E
from stella.orchestrator.v1 import leases_pb2 as L
from stella.orchestrator.v1 import ratelimit_pb2 as R
from stella.orchestrator.v1 import scheduler_pb2 as S
from tests.unit.servicers._chain import bearer, token
from tests.unit.servicers._untouched import Untouched
from tests.unit.servicers.conftest import SERVICES, Serve

ID = "0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b"
ID2 = "0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5c"
SECRET_TEXT = "password=hunter2 at db.internal:5432"


def _envoy_request(**entries: str) -> rls_pb2.RateLimitRequest:
    descriptor = envoy_common_pb2.RateLimitDescriptor(
        entries=[
            envoy_common_pb2.RateLimitDescriptor.Entry(key=k, value=v) for k, v in entries.items()
        ]
    )
    return rls_pb2.RateLimitRequest(domain="acme", descriptors=[descriptor])


# One valid request per servicer; its first storage call raises the error under test.
VALID: dict[str, tuple[str, Message]] = {
    "scheduler": ("GetJob", S.GetJobRequest(job_id=ID)),
    "events": ("ListEvents", E.ListEventsRequest(page_size=10)),
    "events-stream": ("StreamEvents", E.StreamEventsRequest(after_seq=-1)),
    "leases": (
        "Complete",
        L.CompleteRequest(completions=[L.Completion(job_id=ID, lease_id=ID2)]),
    ),
    "ratelimit": ("GetBucket", R.GetBucketRequest(key=R.BucketKey(host="h.example"))),
    "envoy": ("ShouldRateLimit", _envoy_request(host="h.example")),
    "envoy-listener": ("ShouldRateLimit", _envoy_request(host="h.example")),
    "audit": ("ListAuditEntries", A.ListAuditEntriesRequest(page_size=10)),
    "audit-stream": ("ExportBundle", A.ExportBundleRequest(run_id=ID)),
}
SERVED_BY = {"events-stream": "events", "audit-stream": "audit"}


@dataclass(frozen=True)
class Mapped:
    error: BaseException
    code: grpc.StatusCode
    reason: str
    detail: str | None = None  # the google.rpc detail type it must carry besides ErrorInfo


DOMAIN_ERRORS: list[Mapped] = [
    Mapped(NotFound("job", ID), grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND", "ResourceInfo"),
    Mapped(
        FailedPrecondition(
            "the run is finished",
            reason="RUN_STATE",
            violations=[PreconditionViolation("RUN_STATE", f"runs/{ID}", "finished")],
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "RUN_STATE",
        "PreconditionFailure",
    ),
    Mapped(
        IllegalTransition(JobState.SUCCEEDED, JobState.READY, ID),
        grpc.StatusCode.FAILED_PRECONDITION,
        "ILLEGAL_TRANSITION",
        "PreconditionFailure",
    ),
    Mapped(
        LeaseLost(ID, ID2),
        grpc.StatusCode.FAILED_PRECONDITION,
        "LEASE_LOST",
        "PreconditionFailure",
    ),
    Mapped(AlreadyExists("exists already"), grpc.StatusCode.ALREADY_EXISTS, "ALREADY_EXISTS"),
    Mapped(Aborted("lost a race"), grpc.StatusCode.ABORTED, "ABORTED"),
    Mapped(
        PermissionDenied("not yours", required_scope="orch:admin"),
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    ),
    Mapped(Unauthenticated("expired"), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
    Mapped(
        ResourceExhausted("queue full", retry_after_s=2.5, reason="QUOTA_EXCEEDED"),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        "RetryInfo",
    ),
    Mapped(Unavailable("database down"), grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
    Mapped(
        InvalidArgument("rejected by storage", [FieldViolation("payload", "too deep")]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        "BadRequest",
    ),
]
UNEXPECTED = Mapped(RuntimeError(SECRET_TEXT), grpc.StatusCode.INTERNAL, "INTERNAL")


def _mapping_cases() -> Iterator[object]:
    for name in VALID:
        for mapped in DOMAIN_ERRORS:
            yield pytest.param(name, mapped, id=f"{name}-{type(mapped.error).__name__}")
        yield pytest.param(name, UNEXPECTED, id=f"{name}-unexpected")


@pytest.mark.parametrize(("name", "mapped"), list(_mapping_cases()))
def test_storage_errors_reach_the_caller_as_their_status(
    serve: Serve, name: str, mapped: Mapped
) -> None:
    service = SERVED_BY.get(name, name)
    served = serve(service, raises=mapped.error)
    method, request = VALID[name]
    metadata = () if SERVICES[service].scopes is None else None
    outcome = served.chain.call(method, request, metadata=metadata)

    assert served.stores.touched, "the valid request reached storage"
    assert outcome.code == mapped.code, (outcome.code, outcome.details)
    assert outcome.status is not None  # code and message agree with the details' (from_call)
    assert outcome.error_info is not None
    assert outcome.error_info.reason == mapped.reason
    assert outcome.error_info.domain == ERROR_DOMAIN
    if mapped.detail is not None:
        assert mapped.detail in outcome.parsed, sorted(outcome.parsed)
    if mapped is UNEXPECTED:
        assert SECRET_TEXT not in outcome.details
        assert "hunter2" not in repr(outcome.status)
    else:
        assert outcome.details == str(mapped.error)


def test_mapped_details_carry_their_content(serve: Serve) -> None:
    served = serve("scheduler", raises=NotFound("job", ID))
    found = served.chain.call("GetJob", S.GetJobRequest(job_id=ID))
    assert found.parsed["ResourceInfo"].resource_type == "job"
    assert found.parsed["ResourceInfo"].resource_name == ID
    assert found.error_info is not None
    assert dict(found.error_info.metadata) == {"resource_type": "job", "resource_name": ID}

    served = serve("scheduler", raises=ResourceExhausted("full", 2.5, reason="QUOTA_EXCEEDED"))
    full = served.chain.call("GetJob", S.GetJobRequest(job_id=ID))
    delay = full.parsed["RetryInfo"].retry_delay
    assert (delay.seconds, delay.nanos) == (2, 500_000_000)

    served = serve("leases", raises=LeaseLost(ID, ID2))
    lost = served.chain.call(*VALID["leases"])
    (violation,) = lost.parsed["PreconditionFailure"].violations
    assert (violation.type, violation.subject) == ("LEASE", f"jobs/{ID}")
    assert lost.error_info is not None
    assert lost.error_info.metadata["lease_id"] == ID2


# -- authentication and scopes: refused before the servicer runs ------------------------

AUTHENTICATED = [name for name, service in SERVICES.items() if service.scopes is not None]
EVERY_RPC = [
    pytest.param(name, method.name, id=f"{name}.{method.name}")
    for name in AUTHENTICATED
    for method in SERVICES[name].descriptor.methods
]


def _empty_request(name: str, method: str) -> Message | list[Message]:
    descriptor = SERVICES[name].descriptor.methods_by_name[method]
    request: Message = message_factory.GetMessageClass(descriptor.input_type)()
    return [request] if descriptor.client_streaming else request


@pytest.mark.parametrize(("name", "method"), EVERY_RPC)
def test_every_rpc_needs_a_token(serve: Serve, name: str, method: str) -> None:
    served = serve(name)
    outcome = served.chain.call(method, _empty_request(name, method), metadata=())
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED, (outcome.code, outcome.details)
    assert outcome.error_info is not None
    assert outcome.error_info.reason == "TOKEN_MISSING"
    assert served.stores.touched == []


@pytest.mark.parametrize(("name", "method"), EVERY_RPC)
def test_every_rpc_needs_its_scope(serve: Serve, name: str, method: str) -> None:
    scopes = SERVICES[name].scopes
    assert scopes is not None
    path = f"/{SERVICES[name].descriptor.full_name}/{method}"
    assert path in scopes, f"{path} has no required scope"
    served = serve(name)
    others = [s for s in ("orch:read", "orch:work", "orch:operate") if s != scopes[path]]
    outcome = served.chain.call(
        method, _empty_request(name, method), metadata=bearer(token(others))
    )
    assert outcome.code == grpc.StatusCode.PERMISSION_DENIED, (outcome.code, outcome.details)
    assert outcome.error_info is not None
    assert outcome.error_info.metadata["required_scope"] == scopes[path]
    assert served.stores.touched == []


def test_a_malformed_token_is_unauthenticated(serve: Serve) -> None:
    served = serve("scheduler")
    outcome = served.chain.call("GetJob", S.GetJobRequest(job_id=ID), metadata=bearer("x.y.z"))
    assert outcome.code == grpc.StatusCode.UNAUTHENTICATED
    assert served.stores.touched == []


# -- servicer refusals other than INVALID_ARGUMENT, before any storage -------------------

OTHER = R.BucketKey(tenant="globex", host="h.example")
REFUSALS: list[tuple[str, str, Message | list[Message], tuple[str, ...]]] = [
    ("ratelimit", "GetBucket", R.GetBucketRequest(key=OTHER), ()),
    ("ratelimit", "GetCircuit", R.GetCircuitRequest(key=OTHER), ()),
    ("ratelimit", "Acquire", R.AcquireRequest(items=[R.AcquireRequestItem(key=OTHER)]), ()),
    ("ratelimit", "ListBuckets", R.ListBucketsRequest(tenant="globex"), ()),
    ("ratelimit", "ListCircuits", R.ListCircuitsRequest(tenant="globex"), ()),
    ("envoy", "ShouldRateLimit", _envoy_request(tenant="globex", host="h.example"), ()),
    (
        "leases",
        "Claim",
        L.ClaimRequest(worker_id="w", job_types=["a.b"]),
        ("other.type",),
    ),
    (
        "leases",
        "Work",
        [L.WorkRequest(hello=L.WorkerHello(worker_id="w", capacity=1, job_types=["a.b"]))],
        ("other.type",),
    ),
]


@pytest.mark.parametrize(
    ("name", "method", "request_", "job_types"),
    [pytest.param(*r, id=f"{r[0]}.{r[1]}") for r in REFUSALS],
)
def test_another_tenant_or_job_type_is_permission_denied_before_storage(
    serve: Serve,
    name: str,
    method: str,
    request_: Message | list[Message],
    job_types: tuple[str, ...],
) -> None:
    served = serve(name)
    outcome = served.chain.call(method, request_, metadata=bearer(token(job_types=job_types)))
    assert outcome.code == grpc.StatusCode.PERMISSION_DENIED, (outcome.code, outcome.details)
    assert outcome.error_info is not None
    assert outcome.error_info.reason == "PERMISSION_DENIED"
    assert served.stores.touched == []


def test_an_unknown_audit_key_is_not_found_without_storage(serve: Serve) -> None:
    served = serve("audit")
    outcome = served.chain.call("GetPublicKey", A.GetPublicKeyRequest(key_id="no-such-key"))
    assert outcome.code == grpc.StatusCode.NOT_FOUND
    assert outcome.error_info is not None
    assert outcome.error_info.reason == "KEY_NOT_FOUND"
    assert served.stores.touched == []


# -- the rate limiter's Redis errors, through the real Backend and Limiter ---------------


@pytest.fixture
def restore_backend_gauge() -> Iterator[None]:
    yield
    ratelimit_metrics.BACKEND_UP.set(1)  # a real Backend marked Redis down: put it back


def _real_backend(stores: Untouched) -> RateLimitServicer:
    limiter = Limiter(Backend(stores.buckets), stores.repo, failure_policy="closed")
    return RateLimitServicer(limiter, stores.repo, RatelimitSettings())


@pytest.mark.usefixtures("restore_backend_gauge")
@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("GetBucket", R.GetBucketRequest(key=R.BucketKey(host="h.example"))),
        ("ListBuckets", R.ListBucketsRequest()),
        (
            "ConfigureBucket",
            R.ConfigureBucketRequest(
                key=R.BucketKey(host="h.example"),
                capacity=10,
                refill_per_second=1,
                operator={"reason": "servicer test"},
            ),
        ),
    ],
)
def test_redis_down_is_unavailable(serve: Serve, method: str, request_: Message) -> None:
    served = serve("ratelimit", raises=RedisUnavailable("connection refused"), build=_real_backend)
    outcome = served.chain.call(method, request_)
    assert served.stores.touched
    assert outcome.code == grpc.StatusCode.UNAVAILABLE, (outcome.code, outcome.details)
    assert outcome.error_info is not None
    assert outcome.error_info.reason == "RATELIMIT_BACKEND_UNAVAILABLE"


@pytest.mark.usefixtures("restore_backend_gauge")
def test_a_bucket_argument_redis_refuses_is_invalid_argument(serve: Serve) -> None:
    served = serve(
        "ratelimit",
        raises=InvalidBucketArgument("capacity", "must be at most 1e9"),
        build=_real_backend,
    )
    outcome = served.chain.call(
        "ConfigureBucket",
        R.ConfigureBucketRequest(
            key=R.BucketKey(host="h.example"),
            capacity=2**31 - 1,
            refill_per_second=1,
            operator={"reason": "servicer test"},
        ),
    )
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (outcome.code, outcome.details)
    assert outcome.fields == {"capacity"}
