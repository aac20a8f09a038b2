"""Invalid requests for the event stream and the leases service (Work, Claim, Heartbeat,
Complete, Fail, RecordArtifacts).
"""

from __future__ import annotations

from stella.orchestrator.v1 import common_pb2 as C
from stella.orchestrator.v1 import events_pb2 as E
from stella.orchestrator.v1 import leases_pb2 as L
from tests.unit.servicers._bad import (
    ALMOST_UUID,
    DIGEST,
    GARBAGE_TOKEN,
    ID,
    ID2,
    NOT_UUID,
    Bad,
    dur,
    hello,
)

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
