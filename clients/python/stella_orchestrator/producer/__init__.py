"""Stella Orchestrator producer client: submit and follow work from Python code.

Example::

    from stella_orchestrator.producer import Client, RunBuilder

    with Client("localhost:50051", token=TOKEN) as client:
        job = client.submit_job("advisory.ingest", {"pages": 3}, idempotency_key="nvd-0412")
        done = client.wait_job(job.job.id, timeout_s=60)

        run = RunBuilder("nightly", idempotency_key="nightly-2026-12-04")
        run.job("fetch", "advisory.fetch").then("parse", "advisory.parse")
        created = client.create_run(run)
        client.wait_run(created.run.id)

Design note
-----------
Everything goes over the scheduler's gRPC API (``SchedulerService`` and
``EventStreamService``, one channel) with the generated, typed messages: calls return the
proto messages themselves (``resources_pb2.Job``, ``Run``...), typed by the ``.pyi`` stubs
that mypy-protobuf writes beside the generated code. :class:`AsyncClient` is the one
implementation; :class:`Client` drives it from a private event-loop thread, so both behave
the same. Failed calls raise the SDK's typed errors (:mod:`stella_orchestrator.errors`, the
same :class:`RPCError` the worker SDK raises, with a subclass per status code). Submissions
with an ``idempotency_key`` may be repeated safely (``existing`` tells a repeat). Waiting
polls the job or run with a growing pause (at most one read a second); :meth:`~AsyncClient.
watch` follows the live event stream and resumes after a break from the last ``seq`` it
delivered (capped, jittered backoff; statuses retrying cannot fix are raised). The package
imports only the generated code, grpcio and the standard library.
"""

from stella_orchestrator.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RPCError,
    StellaError,
    UnauthenticatedError,
    UnavailableError,
)
from stella_orchestrator.producer._client import (
    JOB_TERMINAL,
    RUN_TERMINAL,
    AsyncClient,
    CreatedRun,
    Submitted,
)
from stella_orchestrator.producer._dag import JobNode, Retry, RunBuilder, job_spec
from stella_orchestrator.producer._sync import Client

__all__ = [
    "JOB_TERMINAL",
    "RUN_TERMINAL",
    "AlreadyExistsError",
    "AsyncClient",
    "Client",
    "CreatedRun",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "JobNode",
    "NotFoundError",
    "PermissionDeniedError",
    "RPCError",
    "ResourceExhaustedError",
    "Retry",
    "RunBuilder",
    "StellaError",
    "Submitted",
    "UnauthenticatedError",
    "UnavailableError",
    "job_spec",
]
