"""Stella Orchestrator worker SDK: run job handlers against the leases service.

Example::

    from stella_orchestrator.worker import Worker, UpstreamThrottled, artifact, progress

    worker = Worker("localhost:50052", token=TOKEN, concurrency=20)

    @worker.handler("advisory.ingest")
    async def ingest(job):
        progress(10, "fetching")
        body = await fetch(job.payload["url"])      # raise UpstreamThrottled on HTTP 429
        artifact("advisories.ndjson", body, media_type="application/x-ndjson")
        return {"count": body.count(b"\\n")}

    worker.run_forever()          # SIGTERM/SIGINT drain gracefully

Design note
-----------
One ``Worker`` holds one ``LeaseService.Work`` bidirectional stream at a time
(``_session``). The server pushes assignments up to the capacity sent in Hello; each runs as
its own asyncio task with a context variable bound to the job, which is how the plain calls
:func:`heartbeat`, :func:`progress`, :func:`artifact` and :func:`current_job` find it
(``_context``). Those calls only record values; the session heartbeats every held lease at
the interval the server's Welcome gave (derived from the lease TTL) and carries the latest
progress along. All reports leave through one batcher (``_outbox``) that merges them into
``WorkerBatch`` messages. A ``lease_lost`` acknowledgement or a CancelJobs message cancels
the handler's task and drops its result. A broken stream cancels every handler (the server
releases the leases of a dead stream) and reconnects with capped, fully jittered backoff
(``_backoff``); refusals that retrying cannot fix raise :class:`RPCError`. Results carry a
``sha256:`` digest of their canonical JSON (RFC 8785, ``_digest``), the same bytes the
server and the Go/Rust SDKs compute. The package imports only the generated code, grpcio and
the standard library. Logs go to the ``stella_orchestrator.worker`` logger and never include
tokens or payloads.
"""

from stella_orchestrator.errors import RPCError, StellaError
from stella_orchestrator.worker._backoff import Backoff, SplitMix64
from stella_orchestrator.worker._context import artifact, current_job, heartbeat, progress
from stella_orchestrator.worker._digest import (
    bytes_digest,
    canonical_json,
    json_digest,
    result_digest,
)
from stella_orchestrator.worker._errors import (
    ERROR_CLASSES,
    JobFailure,
    NotInJobError,
    ParseError,
    SchemaMismatch,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamUnavailable,
    WorkerError,
    error_class_enum,
    error_class_label,
)
from stella_orchestrator.worker._job import ArtifactRecord, Job
from stella_orchestrator.worker._worker import (
    DEFAULT_CHANNEL_OPTIONS,
    NON_RETRYABLE_CODES,
    Handler,
    Worker,
    WorkerStats,
)

__all__ = [
    "DEFAULT_CHANNEL_OPTIONS",
    "ERROR_CLASSES",
    "NON_RETRYABLE_CODES",
    "ArtifactRecord",
    "Backoff",
    "Handler",
    "Job",
    "JobFailure",
    "NotInJobError",
    "ParseError",
    "RPCError",
    "SchemaMismatch",
    "SplitMix64",
    "StellaError",
    "UpstreamRejected",
    "UpstreamThrottled",
    "UpstreamUnavailable",
    "Worker",
    "WorkerError",
    "WorkerStats",
    "artifact",
    "bytes_digest",
    "canonical_json",
    "current_job",
    "error_class_enum",
    "error_class_label",
    "heartbeat",
    "json_digest",
    "progress",
    "result_digest",
]
