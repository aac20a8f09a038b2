"""Invalid requests for the scheduler's control RPCs: backfills, pauses and priorities,
replays, dead letters, incidents, artifacts and the overview.
"""

from __future__ import annotations

from stella.orchestrator.v1 import common_pb2 as C
from stella.orchestrator.v1 import operations_pb2 as O
from stella.orchestrator.v1 import scheduler_pb2 as S
from tests.unit.servicers._bad import GARBAGE_TOKEN, ID, ID2, NOT_UUID, OP, Bad, dur, window

SCHEDULER_CONTROLS: dict[str, list[Bad]] = {
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
