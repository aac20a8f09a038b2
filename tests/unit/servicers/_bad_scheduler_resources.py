"""Invalid requests for the scheduler's resource RPCs: sources, runs, jobs, quotas,
schedules and watermarks.
"""

from __future__ import annotations

from stella.orchestrator.v1 import common_pb2 as C
from stella.orchestrator.v1 import resources_pb2 as P
from stella.orchestrator.v1 import scheduler_pb2 as S
from tests.unit.servicers._bad import (
    ALMOST_UUID,
    FOREIGN_TOKEN,
    GARBAGE_TOKEN,
    ID,
    NOT_UUID,
    OP,
    TOO_LONG_TICKET,
    Bad,
    dur,
    job,
    mask,
    window,
)

SCHEDULER_RESOURCES: dict[str, list[Bad]] = {
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
}
