"""Every RPC of the scheduler, event stream, leases, ratelimit and audit servicers refuses a
malformed request with INVALID_ARGUMENT, a ``google.rpc.BadRequest`` naming the field, and
no storage touched — run under ``grpc_testing`` (tests/unit/servicers/_harness.py), with
neither network nor database.

The tables are checked against the service descriptors: an RPC added without an entry here
fails :func:`test_every_rpc_has_an_invalid_request`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

from orchestrator_audit._servicer import AuditServicer
from orchestrator_core import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from orchestrator_leases._servicer import LeaseServicer
from orchestrator_leases._settings import LeaseSettings
from orchestrator_ratelimit._servicer import RateLimitServicer
from orchestrator_ratelimit._settings import RatelimitSettings
from orchestrator_scheduler._events import EventStreamServicer
from orchestrator_scheduler._servicer import SchedulerServicer
from stella.orchestrator.v1 import audit_pb2 as A
from stella.orchestrator.v1 import common_pb2 as C
from stella.orchestrator.v1 import events_pb2 as E
from stella.orchestrator.v1 import leases_pb2 as L
from stella.orchestrator.v1 import operations_pb2 as O
from stella.orchestrator.v1 import ratelimit_pb2 as R
from stella.orchestrator.v1 import resources_pb2 as P
from stella.orchestrator.v1 import scheduler_pb2 as S
from tests.unit.servicers._harness import Served, Untouched

BAD_ID = "not-a-uuid"
REASON = C.OperatorContext(reason="servicer test", ticket="T-1")


@dataclass(frozen=True)
class Bad:
    """A request that must be refused, and the field its violation must name."""

    request: Message
    field: str


def _ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


SCHEDULER: dict[str, Bad] = {
    "CreateSource": Bad(S.CreateSourceRequest(source=P.Source(name="Bad Name!")), "source.name"),
    "GetSource": Bad(S.GetSourceRequest(source_id=BAD_ID), "source_id"),
    "ListSources": Bad(S.ListSourcesRequest(page_size=-1), "page_size"),
    "UpdateSource": Bad(S.UpdateSourceRequest(source=P.Source(id=BAD_ID)), "source.id"),
    "DeleteSource": Bad(S.DeleteSourceRequest(source_id=BAD_ID), "source_id"),
    "CreateRun": Bad(S.CreateRunRequest(name="r"), "jobs"),
    "GetRun": Bad(S.GetRunRequest(run_id=BAD_ID), "run_id"),
    "ListRuns": Bad(S.ListRunsRequest(source_id=BAD_ID), "source_id"),
    "GetRunDag": Bad(S.GetRunDagRequest(run_id=BAD_ID), "run_id"),
    "CancelRun": Bad(S.CancelRunRequest(run_id=BAD_ID), "run_id"),
    "SubmitJob": Bad(S.SubmitJobRequest(job=P.JobSpec(job_type="Bad Type")), "job.job_type"),
    "SubmitJobs": Bad(
        S.SubmitJobsRequest(jobs=[P.JobSpec(job_type="ok.type", priority=5000)]),
        "jobs[0].priority",
    ),
    "GetJob": Bad(S.GetJobRequest(job_id=BAD_ID), "job_id"),
    "ListJobs": Bad(S.ListJobsRequest(run_id=BAD_ID), "run_id"),
    "CancelJob": Bad(S.CancelJobRequest(job_id=BAD_ID), "job_id"),
    "RetryJob": Bad(S.RetryJobRequest(job_id=BAD_ID), "job_id"),
    "ListJobEvents": Bad(S.ListJobEventsRequest(job_id=BAD_ID), "job_id"),
    "CreateQuota": Bad(S.CreateQuotaRequest(), "operator.reason"),
    "GetQuota": Bad(S.GetQuotaRequest(quota_id=BAD_ID), "quota_id"),
    "ListQuotas": Bad(S.ListQuotasRequest(page_size=-1), "page_size"),
    "UpdateQuota": Bad(S.UpdateQuotaRequest(), "quota.id"),
    "DeleteQuota": Bad(S.DeleteQuotaRequest(quota_id=BAD_ID), "quota_id"),
    "CreateSchedule": Bad(S.CreateScheduleRequest(), "schedule.cron"),
    "GetSchedule": Bad(S.GetScheduleRequest(schedule_id=BAD_ID), "schedule_id"),
    "ListSchedules": Bad(S.ListSchedulesRequest(page_size=-1), "page_size"),
    "UpdateSchedule": Bad(S.UpdateScheduleRequest(), "schedule.id"),
    "DeleteSchedule": Bad(S.DeleteScheduleRequest(schedule_id=BAD_ID), "schedule_id"),
    "ListWatermarks": Bad(S.ListWatermarksRequest(source_id=BAD_ID), "source_id"),
    "CreateBackfill": Bad(S.CreateBackfillRequest(), "operator.ticket"),
    "GetBackfill": Bad(S.GetBackfillRequest(backfill_id=BAD_ID), "backfill_id"),
    "ListBackfills": Bad(S.ListBackfillsRequest(source_id=BAD_ID), "source_id"),
    "CancelBackfill": Bad(S.CancelBackfillRequest(backfill_id=BAD_ID), "operator.reason"),
    "PauseJobs": Bad(S.PauseJobsRequest(), "operator.reason"),
    "ResumeJobs": Bad(S.ResumeJobsRequest(), "operator.reason"),
    "PrioritizeJob": Bad(S.PrioritizeJobRequest(job_id=BAD_ID), "job_id"),
    "PrioritizeRun": Bad(S.PrioritizeRunRequest(run_id=BAD_ID), "run_id"),
    "ReplayJob": Bad(S.ReplayJobRequest(job_id=BAD_ID), "job_id"),
    "ListDeadLetters": Bad(O.ListDeadLettersRequest(source_id=BAD_ID), "source_id"),
    "GetDeadLetter": Bad(O.GetDeadLetterRequest(entry_id=BAD_ID), "entry_id"),
    "GetDeadLetterStats": Bad(O.GetDeadLetterStatsRequest(status=99), "status"),
    "ReplayDeadLetter": Bad(O.ReplayDeadLetterRequest(entry_id=BAD_ID), "entry_id"),
    "ListIncidents": Bad(O.ListIncidentsRequest(page_size=-1), "page_size"),
    "ListArtifacts": Bad(O.ListArtifactsRequest(job_id=BAD_ID), "job_id"),
    "GetOverview": Bad(O.GetOverviewRequest(window=duration_pb2.Duration(seconds=-60)), "window"),
}

EVENTS: dict[str, Bad] = {
    "StreamEvents": Bad(E.StreamEventsRequest(run_id=BAD_ID), "run_id"),
    "ListEvents": Bad(E.ListEventsRequest(page_size=-1), "page_size"),
}

LEASES: dict[str, Bad] = {
    "Claim": Bad(L.ClaimRequest(worker_id="", max_jobs=-1), "worker_id"),
    "Heartbeat": Bad(
        L.HeartbeatRequest(heartbeats=[L.Heartbeat(job_id=BAD_ID)]), "heartbeats[0].job_id"
    ),
    "Complete": Bad(
        L.CompleteRequest(completions=[L.Completion(job_id=BAD_ID)]), "completions[0].job_id"
    ),
    "Fail": Bad(L.FailRequest(failures=[L.Failure(lease_id=BAD_ID)]), "failures[0].lease_id"),
    "RecordArtifacts": Bad(
        L.RecordArtifactsRequest(artifacts=[L.ArtifactRecord(job_id=BAD_ID)]),
        "artifacts[0].job_id",
    ),
}

RATELIMIT: dict[str, Bad] = {
    "Acquire": Bad(R.AcquireRequest(), "items"),
    "ReportThrottle": Bad(
        R.ReportThrottleRequest(key=R.BucketKey(host="h.example")), "error_class"
    ),
    "ConfigureBucket": Bad(
        R.ConfigureBucketRequest(key=R.BucketKey(host="h.example"), capacity=-1, operator=REASON),
        "capacity",
    ),
    "GetBucket": Bad(R.GetBucketRequest(key=R.BucketKey(host="Not A Host!")), "key.host"),
    "ListBuckets": Bad(R.ListBucketsRequest(page_size=-1), "page_size"),
    "SetThrottleOverride": Bad(
        R.SetThrottleOverrideRequest(key=R.BucketKey(host="h.example"), operator=REASON),
        "until",
    ),
    "ClearThrottleOverride": Bad(R.ClearThrottleOverrideRequest(operator=REASON), "key.host"),
    "GetCircuit": Bad(R.GetCircuitRequest(), "key.host"),
    "ListCircuits": Bad(R.ListCircuitsRequest(page_size=-1), "page_size"),
    "SetBlackout": Bad(
        R.SetBlackoutRequest(blackout=R.Blackout(start=_ts(2000), end=_ts(1000)), operator=REASON),
        "blackout.end",
    ),
    "ListBlackouts": Bad(R.ListBlackoutsRequest(source_id=BAD_ID), "source_id"),
    "DeleteBlackout": Bad(
        R.DeleteBlackoutRequest(blackout_id=BAD_ID, operator=REASON), "blackout_id"
    ),
}

AUDIT: dict[str, Bad] = {
    "ExportBundle": Bad(A.ExportBundleRequest(run_id=BAD_ID), "run_id"),
    "ListAuditEntries": Bad(A.ListAuditEntriesRequest(page_size=-1), "page_size"),
}

# RPCs with nothing a caller can get wrong, each with the reason.
NOTHING_TO_REFUSE: dict[str, dict[str, str]] = {
    "LeaseService": {
        "Work": "a bidirectional stream, not driven by grpc_testing here; its malformed "
        "messages are refused in tests/integration/test_leases_service.py",
    },
    "AuditService": {
        "GetPublicKey": "any key id is looked up: an unknown one is NOT_FOUND",
        "VerifyBundle": "any bytes are a bundle to judge: a bad one is ok=false with problems",
        "GetChainHead": "takes no arguments",
    },
}

SERVICES: dict[str, tuple[str, dict[str, Bad]]] = {
    "SchedulerService": ("scheduler", SCHEDULER),
    "EventStreamService": ("events", EVENTS),
    "LeaseService": ("leases", LEASES),
    "RateLimitService": ("ratelimit", RATELIMIT),
    "AuditService": ("audit", AUDIT),
}
DESCRIPTORS = {
    "SchedulerService": S.DESCRIPTOR.services_by_name["SchedulerService"],
    "EventStreamService": E.DESCRIPTOR.services_by_name["EventStreamService"],
    "LeaseService": L.DESCRIPTOR.services_by_name["LeaseService"],
    "RateLimitService": R.DESCRIPTOR.services_by_name["RateLimitService"],
    "AuditService": A.DESCRIPTOR.services_by_name["AuditService"],
}


def _servicers(stores: Untouched) -> dict[str, Any]:
    return {
        "SchedulerService": SchedulerServicer(
            stores.quotas, schedule_ledger=stores.schedules, bucket_store=stores.buckets
        ),
        "EventStreamService": EventStreamServicer(stores.events, stores.horizon, keepalive_s=1),
        "LeaseService": LeaseServicer(
            stores.ledger, stores.completer, stores.dispatcher, stores.listener, LeaseSettings()
        ),
        "RateLimitService": RateLimitServicer(stores.limiter, stores.repo, RatelimitSettings()),
        "AuditService": AuditServicer(stores.audit, stores.signer),
    }


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[dict[str, Served], Untouched]]:
    stores = Untouched("stores")
    servicers = _servicers(stores)
    stores.arm()
    all_served = {name: Served(s, DESCRIPTORS[name]) for name, s in servicers.items()}
    yield all_served, stores
    for one in all_served.values():
        one.close()


CASES = [
    pytest.param(service, method, bad, id=f"{short}.{method}")
    for service, (short, table) in SERVICES.items()
    for method, bad in table.items()
]


@pytest.mark.parametrize(("service", "method", "bad"), CASES)
def test_malformed_request_is_invalid_argument_before_any_storage(
    served: tuple[dict[str, Served], Untouched], service: str, method: str, bad: Bad
) -> None:
    servers, stores = served
    before = len(stores.touched)
    outcome = servers[service].call(method, bad.request)
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (outcome.code, outcome.details)
    assert bad.field in outcome.fields, (bad.field, outcome.fields, outcome.details)
    assert outcome.error_info is not None
    assert outcome.error_info.reason == "INVALID_ARGUMENT"
    assert outcome.details  # a message a person can act on
    assert stores.touched[before:] == []


def test_every_rpc_has_an_invalid_request() -> None:
    for service, descriptor in DESCRIPTORS.items():
        covered = set(SERVICES[service][1]) | set(NOTHING_TO_REFUSE.get(service, {}))
        assert covered == set(descriptor.methods_by_name), service


# -- error mapping: a domain error raised by storage reaches the caller as its status ------

GOOD_ID = "0190a6b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b"
VALID: dict[str, tuple[str, Message]] = {
    "SchedulerService": ("GetJob", S.GetJobRequest(job_id=GOOD_ID)),
    "EventStreamService": ("ListEvents", E.ListEventsRequest(page_size=10)),
    "LeaseService": (
        "Complete",
        L.CompleteRequest(completions=[L.Completion(job_id=GOOD_ID, lease_id=GOOD_ID)]),
    ),
    "RateLimitService": ("GetBucket", R.GetBucketRequest(key=R.BucketKey(host="h.example"))),
    "AuditService": ("ListAuditEntries", A.ListAuditEntriesRequest(page_size=10)),
}
ERRORS: list[tuple[BaseException, grpc.StatusCode, str]] = [
    (NotFound("job", GOOD_ID), grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND"),
    (
        FailedPrecondition("not now", reason="JOB_STATE"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_STATE",
    ),
    (AlreadyExists("twice"), grpc.StatusCode.ALREADY_EXISTS, "ALREADY_EXISTS"),
    (
        ResourceExhausted("full", retry_after_s=2.0, reason="QUOTA_EXCEEDED"),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
    ),
    (Unavailable("database down"), grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
    (RuntimeError("a bug with a secret in it"), grpc.StatusCode.INTERNAL, "INTERNAL"),
]


@pytest.mark.parametrize("service", sorted(VALID))
@pytest.mark.parametrize(
    ("error", "code", "reason"), [pytest.param(*e, id=e[1].name) for e in ERRORS]
)
def test_storage_errors_reach_the_caller_as_their_status(
    service: str, error: BaseException, code: grpc.StatusCode, reason: str
) -> None:
    stores = Untouched("stores")
    servicer = _servicers(stores)[service]
    stores.arm(raises=error)
    one = Served(servicer, DESCRIPTORS[service])
    try:
        method, request = VALID[service]
        outcome = one.call(method, request)
    finally:
        one.close()
    assert stores.touched, "a valid request reaches storage"
    assert outcome.code == code, (outcome.code, outcome.details)
    assert outcome.error_info is not None
    assert outcome.error_info.reason == reason
    assert "secret" not in outcome.details  # an internal error never leaks its message
