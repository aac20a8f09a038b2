"""Every RPC of every servicer the scheduler, leases, ratelimit and audit services register
refuses malformed requests with INVALID_ARGUMENT — several shapes per RPC — through the
services' real error and auth interceptors on a ``grpc_testing`` server (``_chain.py``):

* the status is INVALID_ARGUMENT and ``grpc-status-details-bin`` decodes (``rpc_status.
  from_call``, which also checks code and message agree) to an ``ErrorInfo`` of the
  orchestrator's domain and a ``BadRequest`` naming the offending field;
* no storage was touched: every store, ledger, limiter or signer is an ``Untouched`` that
  records and fails any call, so the refusal came before any storage call.

The table is checked against the service descriptors: an RPC added to a service without an
entry here fails :func:`test_every_rpc_has_invalid_requests`.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest
from envoy.extensions.common.ratelimit.v3 import ratelimit_pb2 as envoy_common_pb2
from envoy.service.ratelimit.v3 import rls_pb2
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.protobuf.message import Message

from orchestrator_grpckit._status import ERROR_DOMAIN
from stella.orchestrator.v1 import audit_pb2 as A
from stella.orchestrator.v1 import common_pb2 as C
from stella.orchestrator.v1 import events_pb2 as E
from stella.orchestrator.v1 import leases_pb2 as L
from stella.orchestrator.v1 import operations_pb2 as O
from stella.orchestrator.v1 import ratelimit_pb2 as R
from stella.orchestrator.v1 import resources_pb2 as P
from stella.orchestrator.v1 import scheduler_pb2 as S
from tests.unit.servicers.conftest import SERVICES, Serve

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


SCHEDULER: dict[str, list[Bad]] = {
    "CreateSource": [
        Bad("bad-name", S.CreateSourceRequest(source=P.Source(name="Bad Name!")), "source.name"),
        Bad("empty", S.CreateSourceRequest(), "source.source_type"),
        Bad(
            "host",
            S.CreateSourceRequest(
                source=P.Source(name="nvd", source_type="nvd", host="Not A Host")
            ),
            "source.host",
        ),
        Bad(
            "base-url",
            S.CreateSourceRequest(
                source=P.Source(
                    name="nvd", source_type="nvd", host="nvd.example", base_url="ftp://x"
                )
            ),
            "source.base_url",
        ),
        Bad(
            "max-active",
            S.CreateSourceRequest(
                source=P.Source(name="nvd", source_type="nvd", host="nvd.example", max_active=-1)
            ),
            "source.max_active",
        ),
        Bad(
            "job-type",
            S.CreateSourceRequest(
                source=P.Source(
                    name="nvd", source_type="nvd", host="nvd.example", job_types=["Bad"]
                )
            ),
            "source.job_types[0]",
        ),
        Bad(
            "paused-no-reason",
            S.CreateSourceRequest(
                source=P.Source(name="nvd", source_type="nvd", host="nvd.example", paused=True)
            ),
            "operator.reason",
        ),
    ],
    "GetSource": [
        Bad("empty", S.GetSourceRequest(), "source_id"),
        Bad("not-uuid", S.GetSourceRequest(source_id=NOT_UUID), "source_id"),
        Bad("short-uuid", S.GetSourceRequest(source_id=ALMOST_UUID), "source_id"),
    ],
    "ListSources": [
        Bad("negative-size", S.ListSourcesRequest(page_size=-1), "page_size"),
        Bad("garbage-token", S.ListSourcesRequest(page_token=GARBAGE_TOKEN), "page_token"),
        Bad("foreign-token", S.ListSourcesRequest(page_token=FOREIGN_TOKEN), "page_token"),
    ],
    "UpdateSource": [
        Bad("bad-id", S.UpdateSourceRequest(source=P.Source(id=NOT_UUID)), "source.id"),
        Bad("no-id", S.UpdateSourceRequest(update_mask=mask("enabled")), "source.id"),
        Bad("no-mask", S.UpdateSourceRequest(source=P.Source(id=ID)), "update_mask"),
        Bad(
            "immutable",
            S.UpdateSourceRequest(source=P.Source(id=ID), update_mask=mask("tenant")),
            "update_mask.paths[0]",
        ),
        Bad(
            "bad-value",
            S.UpdateSourceRequest(source=P.Source(id=ID, host="A B"), update_mask=mask("host")),
            "source.host",
        ),
        Bad(
            "pause-no-reason",
            S.UpdateSourceRequest(source=P.Source(id=ID, paused=True), update_mask=mask("paused")),
            "operator.reason",
        ),
    ],
    "DeleteSource": [
        Bad("empty", S.DeleteSourceRequest(), "source_id"),
        Bad("not-uuid", S.DeleteSourceRequest(source_id=NOT_UUID), "source_id"),
        Bad(
            "long-ticket",
            S.DeleteSourceRequest(source_id=ID, operator=TOO_LONG_TICKET),
            "operator.ticket",
        ),
    ],
    "CreateRun": [
        Bad("no-jobs", S.CreateRunRequest(name="r"), "jobs"),
        Bad("long-name", S.CreateRunRequest(name="n" * 257, jobs=[job()]), "name"),
        Bad("source-id", S.CreateRunRequest(source_id=NOT_UUID, jobs=[job()]), "source_id"),
        Bad(
            "label-key",
            S.CreateRunRequest(labels={"Bad Key": "v"}, jobs=[job()]),
            "labels[Bad Key]",
        ),
        Bad("job-type", S.CreateRunRequest(jobs=[job(job_type="")]), "jobs[0].job_type"),
        Bad(
            "dangling-dep",
            S.CreateRunRequest(jobs=[job(key="a", depends_on=["b"])]),
            "jobs[0].depends_on",
        ),
        Bad(
            "cycle",
            S.CreateRunRequest(
                jobs=[job(key="a", depends_on=["b"]), job(key="b", depends_on=["a"])]
            ),
            "jobs",
        ),
    ],
    "GetRun": [
        Bad("empty", S.GetRunRequest(), "run_id"),
        Bad("not-uuid", S.GetRunRequest(run_id=NOT_UUID), "run_id"),
    ],
    "ListRuns": [
        Bad("source-id", S.ListRunsRequest(source_id=NOT_UUID), "source_id"),
        Bad("negative-size", S.ListRunsRequest(page_size=-5), "page_size"),
        Bad("garbage-token", S.ListRunsRequest(page_token=GARBAGE_TOKEN), "page_token"),
    ],
    "GetRunDag": [
        Bad("empty", S.GetRunDagRequest(), "run_id"),
        Bad("not-uuid", S.GetRunDagRequest(run_id=NOT_UUID), "run_id"),
    ],
    "CancelRun": [
        Bad("empty", S.CancelRunRequest(), "run_id"),
        Bad("not-uuid", S.CancelRunRequest(run_id=NOT_UUID), "run_id"),
    ],
    "ResumeRun": [
        Bad("no-reason", S.ResumeRunRequest(run_id=ID), "operator.reason"),
        Bad("empty", S.ResumeRunRequest(operator=OP), "run_id"),
        Bad("not-uuid", S.ResumeRunRequest(run_id=NOT_UUID, operator=OP), "run_id"),
    ],
    "SubmitJob": [
        Bad("bad-type", S.SubmitJobRequest(job=P.JobSpec(job_type="Bad Type")), "job.job_type"),
        Bad("no-type", S.SubmitJobRequest(job=P.JobSpec()), "job.job_type"),
        Bad("run-id", S.SubmitJobRequest(job=job(), run_id=NOT_UUID), "run_id"),
        Bad("priority-high", S.SubmitJobRequest(job=job(priority=1001)), "job.priority"),
        Bad("priority-low", S.SubmitJobRequest(job=job(priority=-1001)), "job.priority"),
        Bad("key", S.SubmitJobRequest(job=job(key="-starts-with-dash")), "job.key"),
        Bad(
            "window",
            S.SubmitJobRequest(job=job(event_time_window=window(2000, 1000))),
            "job.event_time_window",
        ),
        Bad(
            "dep-id",
            S.SubmitJobRequest(job=job(depends_on_job_ids=[NOT_UUID])),
            "job.depends_on_job_ids[0]",
        ),
        Bad("self-dep", S.SubmitJobRequest(job=job(key="a", depends_on=["a"])), "job.depends_on"),
        Bad("label", S.SubmitJobRequest(job=job(labels={"k": "v" * 257})), "job.labels[k]"),
        Bad(
            "trace-parent", S.SubmitJobRequest(job=job(trace_parent="t" * 129)), "job.trace_parent"
        ),
    ],
    "SubmitJobs": [
        Bad("priority", S.SubmitJobsRequest(jobs=[job(priority=5000)]), "jobs[0].priority"),
        Bad("empty", S.SubmitJobsRequest(), "jobs"),
        Bad("duplicate-key", S.SubmitJobsRequest(jobs=[job(key="a"), job(key="a")]), "jobs[1].key"),
        Bad(
            "second-bad",
            S.SubmitJobsRequest(jobs=[job(), job(source_id=NOT_UUID)]),
            "jobs[1].source_id",
        ),
    ],
    "GetJob": [
        Bad("empty", S.GetJobRequest(), "job_id"),
        Bad("not-uuid", S.GetJobRequest(job_id=NOT_UUID), "job_id"),
        Bad("huge", S.GetJobRequest(job_id="x" * 10_000), "job_id"),
    ],
    "ListJobs": [
        Bad("run-id", S.ListJobsRequest(run_id=NOT_UUID), "run_id"),
        Bad("source-id", S.ListJobsRequest(source_id=ALMOST_UUID), "source_id"),
        Bad("negative-size", S.ListJobsRequest(page_size=-1), "page_size"),
        Bad("foreign-token", S.ListJobsRequest(page_token=FOREIGN_TOKEN), "page_token"),
    ],
    "CancelJob": [
        Bad("empty", S.CancelJobRequest(), "job_id"),
        Bad("not-uuid", S.CancelJobRequest(job_id=NOT_UUID), "job_id"),
        Bad(
            "long-reason",
            S.CancelJobRequest(job_id=ID, operator=C.OperatorContext(reason="r" * 257)),
            "operator.reason",
        ),
    ],
    "RetryJob": [
        Bad("empty", S.RetryJobRequest(), "job_id"),
        Bad("not-uuid", S.RetryJobRequest(job_id=NOT_UUID), "job_id"),
        Bad(
            "long-ticket", S.RetryJobRequest(job_id=ID, operator=TOO_LONG_TICKET), "operator.ticket"
        ),
    ],
    "ListJobEvents": [
        Bad("empty", S.ListJobEventsRequest(), "job_id"),
        Bad("not-uuid", S.ListJobEventsRequest(job_id=NOT_UUID), "job_id"),
        Bad("negative-size", S.ListJobEventsRequest(job_id=ID, page_size=-1), "page_size"),
        Bad(
            "garbage-token",
            S.ListJobEventsRequest(job_id=ID, page_token=GARBAGE_TOKEN),
            "page_token",
        ),
    ],
    "CreateQuota": [
        Bad("no-reason", S.CreateQuotaRequest(), "operator.reason"),
        Bad(
            "blank-reason",
            S.CreateQuotaRequest(operator=C.OperatorContext(reason="   ")),
            "operator.reason",
        ),
        Bad(
            "negative",
            S.CreateQuotaRequest(quota=P.Quota(max_active=-1), operator=OP),
            "quota.max_active",
        ),
        Bad(
            "too-big",
            S.CreateQuotaRequest(quota=P.Quota(max_queued=1_000_000_001), operator=OP),
            "quota.max_queued",
        ),
        Bad(
            "job-type",
            S.CreateQuotaRequest(quota=P.Quota(job_type="Bad"), operator=OP),
            "quota.job_type",
        ),
    ],
    "GetQuota": [
        Bad("empty", S.GetQuotaRequest(), "quota_id"),
        Bad("not-uuid", S.GetQuotaRequest(quota_id=NOT_UUID), "quota_id"),
    ],
    "ListQuotas": [
        Bad("negative-size", S.ListQuotasRequest(page_size=-1), "page_size"),
        Bad("garbage-token", S.ListQuotasRequest(page_token=GARBAGE_TOKEN), "page_token"),
    ],
    "UpdateQuota": [
        Bad("no-id", S.UpdateQuotaRequest(), "quota.id"),
        Bad("not-uuid", S.UpdateQuotaRequest(quota=P.Quota(id=NOT_UUID)), "quota.id"),
        Bad("no-mask", S.UpdateQuotaRequest(quota=P.Quota(id=ID), operator=OP), "update_mask"),
        Bad(
            "immutable",
            S.UpdateQuotaRequest(quota=P.Quota(id=ID), update_mask=mask("tenant"), operator=OP),
            "update_mask.paths[0]",
        ),
        Bad(
            "bad-value",
            S.UpdateQuotaRequest(
                quota=P.Quota(id=ID, burst=-3), update_mask=mask("burst"), operator=OP
            ),
            "quota.burst",
        ),
        Bad(
            "no-reason",
            S.UpdateQuotaRequest(quota=P.Quota(id=ID, burst=3), update_mask=mask("burst")),
            "operator.reason",
        ),
    ],
    "DeleteQuota": [
        Bad("not-uuid", S.DeleteQuotaRequest(quota_id=NOT_UUID), "quota_id"),
        Bad("no-reason", S.DeleteQuotaRequest(quota_id=ID), "operator.reason"),
    ],
    "CreateSchedule": [
        Bad("empty", S.CreateScheduleRequest(), "schedule.cron"),
        Bad(
            "cron-fields",
            S.CreateScheduleRequest(schedule=P.Schedule(name="s", cron="* * *")),
            "schedule.cron",
        ),
        Bad(
            "cron-text",
            S.CreateScheduleRequest(schedule=P.Schedule(name="s", cron="every day")),
            "schedule.cron",
        ),
        Bad(
            "name",
            S.CreateScheduleRequest(schedule=P.Schedule(name="Bad Name", cron="@hourly")),
            "schedule.name",
        ),
        Bad(
            "source-id",
            S.CreateScheduleRequest(
                schedule=P.Schedule(name="s", cron="@hourly", source_id=NOT_UUID)
            ),
            "schedule.source_id",
        ),
        Bad(
            "no-template-jobs",
            S.CreateScheduleRequest(schedule=P.Schedule(name="s", cron="@hourly")),
            "schedule.run_template.jobs",
        ),
        Bad(
            "window",
            S.CreateScheduleRequest(
                schedule=P.Schedule(name="s", cron="@hourly", catch_up_window=dur(-60))
            ),
            "schedule.catch_up_window",
        ),
    ],
    "GetSchedule": [
        Bad("empty", S.GetScheduleRequest(), "schedule_id"),
        Bad("not-uuid", S.GetScheduleRequest(schedule_id=NOT_UUID), "schedule_id"),
    ],
    "ListSchedules": [
        Bad("negative-size", S.ListSchedulesRequest(page_size=-1), "page_size"),
        Bad("garbage-token", S.ListSchedulesRequest(page_token=GARBAGE_TOKEN), "page_token"),
    ],
    "UpdateSchedule": [
        Bad("no-id", S.UpdateScheduleRequest(), "schedule.id"),
        Bad("no-mask", S.UpdateScheduleRequest(schedule=P.Schedule(id=ID)), "update_mask"),
        Bad(
            "immutable",
            S.UpdateScheduleRequest(schedule=P.Schedule(id=ID), update_mask=mask("tenant")),
            "update_mask.paths[0]",
        ),
        Bad(
            "bad-cron",
            S.UpdateScheduleRequest(
                schedule=P.Schedule(id=ID, cron="61 * * * *"), update_mask=mask("cron")
            ),
            "schedule.cron",
        ),
    ],
    "DeleteSchedule": [
        Bad("empty", S.DeleteScheduleRequest(), "schedule_id"),
        Bad("not-uuid", S.DeleteScheduleRequest(schedule_id=NOT_UUID), "schedule_id"),
        Bad(
            "long-ticket",
            S.DeleteScheduleRequest(schedule_id=ID, operator=TOO_LONG_TICKET),
            "operator.ticket",
        ),
    ],
    "ListWatermarks": [
        Bad("source-id", S.ListWatermarksRequest(source_id=NOT_UUID), "source_id"),
        Bad("negative-size", S.ListWatermarksRequest(page_size=-1), "page_size"),
        Bad("garbage-token", S.ListWatermarksRequest(page_token=GARBAGE_TOKEN), "page_token"),
    ],
    "CreateBackfill": [
        Bad("no-operator", S.CreateBackfillRequest(), "operator.ticket"),
        Bad(
            "no-reason",
            S.CreateBackfillRequest(operator=C.OperatorContext(ticket="T-1")),
            "operator.reason",
        ),
        Bad(
            "no-source",
            S.CreateBackfillRequest(
                job_type="a.b", range=window(0, 3600), window_size=dur(60), operator=OP
            ),
            "source_id",
        ),
        Bad(
            "source-id",
            S.CreateBackfillRequest(
                source_id=NOT_UUID,
                job_type="a.b",
                range=window(0, 3600),
                window_size=dur(60),
                operator=OP,
            ),
            "source_id",
        ),
        Bad(
            "job-type",
            S.CreateBackfillRequest(
                source_id=ID,
                job_type="Bad",
                range=window(0, 3600),
                window_size=dur(60),
                operator=OP,
            ),
            "job_type",
        ),
        Bad(
            "no-range",
            S.CreateBackfillRequest(source_id=ID, job_type="a.b", window_size=dur(60), operator=OP),
            "range",
        ),
        Bad(
            "reversed-range",
            S.CreateBackfillRequest(
                source_id=ID,
                job_type="a.b",
                range=window(3600, 0),
                window_size=dur(60),
                operator=OP,
            ),
            "range.end",
        ),
        Bad(
            "no-window",
            S.CreateBackfillRequest(
                source_id=ID, job_type="a.b", range=window(0, 3600), operator=OP
            ),
            "window_size",
        ),
        Bad(
            "too-many-windows",
            S.CreateBackfillRequest(
                source_id=ID,
                job_type="a.b",
                range=window(0, 2 * 86400),
                window_size=dur(1),
                operator=OP,
            ),
            "window_size",
        ),
        Bad(
            "priority",
            S.CreateBackfillRequest(
                source_id=ID,
                job_type="a.b",
                range=window(0, 3600),
                window_size=dur(60),
                priority=2000,
                operator=OP,
            ),
            "priority",
        ),
    ],
    "GetBackfill": [
        Bad("empty", S.GetBackfillRequest(), "backfill_id"),
        Bad("not-uuid", S.GetBackfillRequest(backfill_id=NOT_UUID), "backfill_id"),
    ],
    "ListBackfills": [
        Bad("source-id", S.ListBackfillsRequest(source_id=NOT_UUID), "source_id"),
        Bad("negative-size", S.ListBackfillsRequest(page_size=-1), "page_size"),
        Bad("garbage-token", S.ListBackfillsRequest(page_token=GARBAGE_TOKEN), "page_token"),
    ],
    "CancelBackfill": [
        Bad("no-operator", S.CancelBackfillRequest(backfill_id=ID), "operator.reason"),
        Bad("not-uuid", S.CancelBackfillRequest(backfill_id=NOT_UUID, operator=OP), "backfill_id"),
        Bad("empty-id", S.CancelBackfillRequest(operator=OP), "backfill_id"),
    ],
    "PauseJobs": [
        Bad("no-reason", S.PauseJobsRequest(), "operator.reason"),
        Bad(
            "blank-reason",
            S.PauseJobsRequest(operator=C.OperatorContext(reason="\t ")),
            "operator.reason",
        ),
        Bad("job-type", S.PauseJobsRequest(job_type="Bad Type", operator=OP), "job_type"),
    ],
    "ResumeJobs": [
        Bad("no-reason", S.ResumeJobsRequest(), "operator.reason"),
        Bad(
            "job-type", S.ResumeJobsRequest(job_type="9starts.with.digit", operator=OP), "job_type"
        ),
    ],
    "PrioritizeJob": [
        Bad("not-uuid", S.PrioritizeJobRequest(job_id=NOT_UUID), "job_id"),
        Bad("too-high", S.PrioritizeJobRequest(job_id=ID, priority=1001), "priority"),
        Bad("too-low", S.PrioritizeJobRequest(job_id=ID, priority=-1001), "priority"),
    ],
    "PrioritizeRun": [
        Bad("not-uuid", S.PrioritizeRunRequest(run_id=NOT_UUID), "run_id"),
        Bad("empty", S.PrioritizeRunRequest(), "run_id"),
        Bad("too-high", S.PrioritizeRunRequest(run_id=ID, priority=2**31 - 1), "priority"),
    ],
    "ReplayJob": [
        Bad("not-uuid", S.ReplayJobRequest(job_id=NOT_UUID), "job_id"),
        Bad("empty", S.ReplayJobRequest(), "job_id"),
    ],
    "ListDeadLetters": [
        Bad("source-id", O.ListDeadLettersRequest(source_id=NOT_UUID), "source_id"),
        Bad("status", O.ListDeadLettersRequest(status=99), "status"),
        Bad("error-class", O.ListDeadLettersRequest(error_class=99), "error_class"),
        Bad("negative-size", O.ListDeadLettersRequest(page_size=-1), "page_size"),
        Bad("garbage-token", O.ListDeadLettersRequest(page_token=GARBAGE_TOKEN), "page_token"),
    ],
    "GetDeadLetter": [
        Bad("empty", O.GetDeadLetterRequest(), "entry_id"),
        Bad("not-uuid", O.GetDeadLetterRequest(entry_id=NOT_UUID), "entry_id"),
    ],
    "GetDeadLetterStats": [
        Bad("unknown", O.GetDeadLetterStatsRequest(status=99), "status"),
        Bad("negative", O.GetDeadLetterStatsRequest(status=-1), "status"),
    ],
    "ReplayDeadLetter": [
        Bad("not-uuid", O.ReplayDeadLetterRequest(entry_id=NOT_UUID), "entry_id"),
        Bad("no-reason", O.ReplayDeadLetterRequest(entry_id=ID), "operator.reason"),
    ],
    "GetIncident": [
        Bad("not-uuid", O.GetIncidentRequest(incident_id=NOT_UUID), "incident_id"),
    ],
    "AcknowledgeIncident": [
        Bad("not-uuid", O.AcknowledgeIncidentRequest(incident_id=NOT_UUID), "incident_id"),
        Bad("no-reason", O.AcknowledgeIncidentRequest(incident_id=ID), "operator.reason"),
    ],
    "ListIncidents": [
        Bad("negative-size", O.ListIncidentsRequest(page_size=-1), "page_size"),
        Bad("state", O.ListIncidentsRequest(state=42), "state"),
        Bad("garbage-token", O.ListIncidentsRequest(page_token=GARBAGE_TOKEN), "page_token"),
    ],
    "ListArtifacts": [
        Bad("not-uuid", O.ListArtifactsRequest(job_id=NOT_UUID), "job_id"),
        Bad("neither", O.ListArtifactsRequest(), "job_id"),
        Bad("both", O.ListArtifactsRequest(job_id=ID, run_id=ID2), "job_id"),
        Bad("run-id", O.ListArtifactsRequest(run_id=NOT_UUID), "run_id"),
        Bad("negative-size", O.ListArtifactsRequest(job_id=ID, page_size=-1), "page_size"),
    ],
    "GetOverview": [
        Bad("negative", O.GetOverviewRequest(window=dur(-60)), "window"),
        Bad("zero", O.GetOverviewRequest(window=dur(0)), "window"),
        Bad("over-a-day", O.GetOverviewRequest(window=dur(86401)), "window"),
    ],
}

EVENTS: dict[str, list[Bad]] = {
    "StreamEvents": [
        Bad("run-id", E.StreamEventsRequest(run_id=NOT_UUID), "run_id"),
        Bad("source-id", E.StreamEventsRequest(source_id=NOT_UUID), "source_id"),
        Bad("job-id", E.StreamEventsRequest(job_id=ALMOST_UUID), "job_id"),
        Bad("types", E.StreamEventsRequest(types=[f"t{i}" for i in range(33)]), "types"),
        Bad("after-seq", E.StreamEventsRequest(after_seq=-2), "after_seq"),
    ],
    "ListEvents": [
        Bad("negative-size", E.ListEventsRequest(page_size=-1), "page_size"),
        Bad("garbage-token", E.ListEventsRequest(page_token=GARBAGE_TOKEN), "page_token"),
        Bad("run-id", E.ListEventsRequest(run_id=NOT_UUID), "run_id"),
        Bad("types", E.ListEventsRequest(types=["t"] * 33), "types"),
    ],
}

LEASES: dict[str, list[Bad]] = {
    "Work": [
        Bad("batch-first", [L.WorkRequest(batch=L.WorkerBatch())], "hello"),
        Bad("drain-first", [L.WorkRequest(drain=L.WorkerDrain()), hello()], "hello"),
        Bad("no-worker-id", [hello(worker_id="")], "hello.worker_id"),
        Bad("long-worker-id", [hello(worker_id="w" * 257)], "hello.worker_id"),
        Bad("no-capacity", [hello(capacity=0)], "hello.capacity"),
        Bad("capacity-over", [hello(capacity=10_001)], "hello.capacity"),
        Bad("job-type", [hello(job_types=("a.b", "Bad"))], "hello.job_types[1]"),
        Bad("no-job-types", [hello(job_types=())], "hello.job_types"),
    ],
    "Claim": [
        Bad("no-worker-id", L.ClaimRequest(worker_id="", max_jobs=-1), "worker_id"),
        Bad("long-worker-id", L.ClaimRequest(worker_id="w" * 257, job_types=["a.b"]), "worker_id"),
        Bad(
            "max-jobs-over",
            L.ClaimRequest(worker_id="w", max_jobs=501, job_types=["a.b"]),
            "max_jobs",
        ),
        Bad(
            "max-jobs-negative",
            L.ClaimRequest(worker_id="w", max_jobs=-1, job_types=["a.b"]),
            "max_jobs",
        ),
        Bad("wait-over", L.ClaimRequest(worker_id="w", wait=dur(31), job_types=["a.b"]), "wait"),
        Bad(
            "wait-negative", L.ClaimRequest(worker_id="w", wait=dur(-1), job_types=["a.b"]), "wait"
        ),
        Bad("job-type", L.ClaimRequest(worker_id="w", job_types=["Bad"]), "job_types[0]"),
        Bad("no-job-types", L.ClaimRequest(worker_id="w"), "job_types"),
    ],
    "Heartbeat": [
        Bad(
            "job-id",
            L.HeartbeatRequest(heartbeats=[L.Heartbeat(job_id=NOT_UUID, lease_id=ID)]),
            "heartbeats[0].job_id",
        ),
        Bad(
            "no-lease",
            L.HeartbeatRequest(heartbeats=[L.Heartbeat(job_id=ID)]),
            "heartbeats[0].lease_id",
        ),
        Bad(
            "percent",
            L.HeartbeatRequest(
                heartbeats=[L.Heartbeat(job_id=ID, lease_id=ID, progress=C.Progress(percent=101))]
            ),
            "heartbeats[0].progress.percent",
        ),
        Bad(
            "too-many",
            L.HeartbeatRequest(heartbeats=[L.Heartbeat(job_id=ID, lease_id=ID)] * 501),
            "heartbeats",
        ),
    ],
    "Complete": [
        Bad(
            "job-id",
            L.CompleteRequest(completions=[L.Completion(job_id=NOT_UUID, lease_id=ID)]),
            "completions[0].job_id",
        ),
        Bad(
            "digest",
            L.CompleteRequest(
                completions=[L.Completion(job_id=ID, lease_id=ID, result_digest="md5:00")]
            ),
            "completions[0].result_digest",
        ),
        Bad(
            "artifact-owner",
            L.CompleteRequest(
                completions=[
                    L.Completion(
                        job_id=ID,
                        lease_id=ID,
                        artifacts=[
                            L.ArtifactRecord(job_id=ID2, lease_id=ID, name="a", digest=DIGEST)
                        ],
                    )
                ]
            ),
            "completions[0].artifacts[0]",
        ),
        Bad(
            "too-many",
            L.CompleteRequest(completions=[L.Completion(job_id=ID, lease_id=ID)] * 501),
            "completions",
        ),
    ],
    "Fail": [
        Bad(
            "lease-id",
            L.FailRequest(failures=[L.Failure(job_id=ID, lease_id=NOT_UUID)]),
            "failures[0].lease_id",
        ),
        Bad(
            "retry-after",
            L.FailRequest(
                failures=[L.Failure(job_id=ID, lease_id=ID, error=C.JobError(retry_after=dur(-5)))]
            ),
            "failures[0].error.retry_after",
        ),
        Bad(
            "second-bad",
            L.FailRequest(failures=[L.Failure(job_id=ID, lease_id=ID), L.Failure(job_id=ID)]),
            "failures[1].lease_id",
        ),
        Bad(
            "too-many",
            L.FailRequest(failures=[L.Failure(job_id=ID, lease_id=ID)] * 501),
            "failures",
        ),
    ],
    "RecordArtifacts": [
        Bad(
            "job-id",
            L.RecordArtifactsRequest(
                artifacts=[L.ArtifactRecord(job_id=NOT_UUID, lease_id=ID, name="a", digest=DIGEST)]
            ),
            "artifacts[0].job_id",
        ),
        Bad(
            "digest",
            L.RecordArtifactsRequest(
                artifacts=[L.ArtifactRecord(job_id=ID, lease_id=ID, name="a", digest="sha256:XYZ")]
            ),
            "artifacts[0].digest",
        ),
        Bad(
            "no-name",
            L.RecordArtifactsRequest(
                artifacts=[L.ArtifactRecord(job_id=ID, lease_id=ID, digest=DIGEST)]
            ),
            "artifacts[0].name",
        ),
        Bad(
            "size",
            L.RecordArtifactsRequest(
                artifacts=[
                    L.ArtifactRecord(job_id=ID, lease_id=ID, name="a", digest=DIGEST, size_bytes=-1)
                ]
            ),
            "artifacts[0].size_bytes",
        ),
        Bad(
            "too-many", L.RecordArtifactsRequest(artifacts=[L.ArtifactRecord()] * 501), "artifacts"
        ),
    ],
}

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

AUDIT: dict[str, list[Bad]] = {
    "ExportBundle": [
        Bad("no-scope", A.ExportBundleRequest(), "scope"),
        Bad("run-id", A.ExportBundleRequest(run_id=NOT_UUID), "run_id"),
        Bad("empty-run-id", A.ExportBundleRequest(run_id=""), "run_id"),
        Bad("source-id", A.ExportBundleRequest(source_id=ALMOST_UUID), "source_id"),
        Bad(
            "open-range",
            A.ExportBundleRequest(time_range=C.TimeWindow(start=ts(1000))),
            "time_range",
        ),
        Bad(
            "reversed-range", A.ExportBundleRequest(time_range=window(2000, 1000)), "time_range.end"
        ),
    ],
    "ListAuditEntries": [
        Bad("negative-size", A.ListAuditEntriesRequest(page_size=-1), "page_size"),
        Bad("long-actor", A.ListAuditEntriesRequest(actor="a" * 257), "actor"),
        Bad("long-action", A.ListAuditEntriesRequest(action="a" * 257), "action"),
        Bad(
            "reversed-range",
            A.ListAuditEntriesRequest(time_range=window(2000, 2000)),
            "time_range.end",
        ),
        Bad("garbage-token", A.ListAuditEntriesRequest(page_token=GARBAGE_TOKEN), "page_token"),
        Bad("foreign-token", A.ListAuditEntriesRequest(page_token=FOREIGN_TOKEN), "page_token"),
    ],
}

TABLES: dict[str, dict[str, list[Bad]]] = {
    "scheduler": SCHEDULER,
    "events": EVENTS,
    "leases": LEASES,
    "ratelimit": RATELIMIT,
    "envoy": ENVOY,
    "envoy-listener": ENVOY_LISTENER,
    "audit": AUDIT,
}

# RPCs with nothing a caller can get wrong, each with the reason.
NOTHING_TO_REFUSE: dict[str, dict[str, str]] = {
    "audit": {
        "GetPublicKey": "any key id is a lookup: an unknown one is NOT_FOUND (tested in "
        "test_error_mapping.py), never malformed",
        "VerifyBundle": "any bytes are a bundle to judge: a bad one is ok=false with problems",
        "GetChainHead": "takes no arguments",
    },
}

CASES = [
    pytest.param(service, method, bad, id=f"{service}.{method}.{bad.label}")
    for service, table in TABLES.items()
    for method, bads in table.items()
    for bad in bads
]


def test_every_rpc_has_invalid_requests() -> None:
    assert set(TABLES) == set(SERVICES)
    for name, service in SERVICES.items():
        listed = set(TABLES[name])
        exempt = set(NOTHING_TO_REFUSE.get(name, {}))
        assert not listed & exempt, name
        assert listed | exempt == set(service.descriptor.methods_by_name), name
        assert all(TABLES[name][m] for m in listed), f"{name}: an RPC with no invalid request"


def test_labels_are_unique_per_rpc() -> None:
    for table in TABLES.values():
        for method, bads in table.items():
            labels = [b.label for b in bads]
            assert len(labels) == len(set(labels)), method


@pytest.mark.parametrize(("service", "method", "bad"), CASES)
def test_malformed_request_is_invalid_argument_before_any_storage(
    serve: Serve, service: str, method: str, bad: Bad
) -> None:
    served = serve(service)
    # the token-less Envoy listener is called without a token, as Envoy calls it
    metadata = () if SERVICES[service].scopes is None else None
    outcome = served.chain.call(method, bad.request, metadata=metadata)

    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, (outcome.code, outcome.details)
    assert outcome.status is not None, "no grpc-status-details-bin trailer"
    assert outcome.error_info is not None
    assert outcome.error_info.reason == "INVALID_ARGUMENT"
    assert outcome.error_info.domain == ERROR_DOMAIN
    assert outcome.bad_request is not None, outcome.details
    assert bad.field in outcome.fields, (bad.field, outcome.fields, outcome.details)
    assert all(v.description for v in outcome.bad_request.field_violations)
    assert outcome.details  # a message a person can act on
    assert outcome.responses == []  # nothing was streamed before the refusal
    assert served.stores.touched == []
