"""The asyncio producer client: one channel to the scheduler, typed calls, typed errors."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import grpc
from google.protobuf import field_mask_pb2

from stella.orchestrator.v1 import (
    common_pb2,
    events_pb2,
    events_pb2_grpc,
    operations_pb2,
    resources_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)
from stella_orchestrator._connection import (
    DEFAULT_CHANNEL_OPTIONS,
    Token,
    aio_channel,
    call_metadata,
    resolve_credentials,
)
from stella_orchestrator.errors import RPCError
from stella_orchestrator.producer._dag import RunBuilder, job_spec, time_window, to_struct
from stella_orchestrator.worker._backoff import Backoff

T = TypeVar("T")

DEFAULT_TIMEOUT_S: Final = 30.0
"""Deadline of one unary call unless the client is given another."""
WAIT_POLL_MAX_S: Final = 1.0
"""Longest pause between two looks at a job or run being waited for (starts at 50 ms)."""
WATCH_RETRY_CODES: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)
"""A broken event stream with one of these codes is resumed; anything else is raised."""

JOB_TERMINAL: Final = frozenset(
    {common_pb2.JOB_STATE_SUCCEEDED, common_pb2.JOB_STATE_DEAD, common_pb2.JOB_STATE_CANCELED}
)
RUN_TERMINAL: Final = frozenset(
    {common_pb2.RUN_STATE_SUCCEEDED, common_pb2.RUN_STATE_FAILED, common_pb2.RUN_STATE_CANCELED}
)


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission: the job, and whether its idempotency key named one that
    existed already (then nothing new was queued)."""

    job: resources_pb2.Job
    existing: bool


@dataclass(frozen=True)
class CreatedRun:
    """The answer to :meth:`AsyncClient.create_run`: the run, its jobs (in the builder's
    order) and whether its idempotency key named a run that existed already."""

    run: resources_pb2.Run
    jobs: list[resources_pb2.Job]
    existing: bool

    def job(self, key: str) -> resources_pb2.Job:
        """The job the builder named ``key``.

        Raises:
            KeyError: No job of the run has that key.
        """
        for job in self.jobs:
            if job.key == key:
                return job
        raise KeyError(key)


def _operator(reason: str, ticket: str) -> common_pb2.OperatorContext:
    return common_pb2.OperatorContext(reason=reason, ticket=ticket)


class AsyncClient:
    """Submit and follow work on the scheduler from asyncio code.

    Use as ``async with AsyncClient("localhost:50051", token=TOKEN) as client: ...`` (or
    call :meth:`close`). Every call raises :class:`~stella_orchestrator.errors.RPCError` (a
    subclass per status code, e.g. ``NotFoundError``) when the server refuses it.

    Args:
        target: The scheduler: ``host:port``, a comma list of replicas or a gRPC name
            (``dns:///scheduler:50051``), balanced ``round_robin``.
        token: Bearer token with scope ``orch:operate`` (reads need ``orch:read``), or a
            function returning one (called for every call, so a rotating token works).
        tenant: Tenant to act for when the token names several (``x-stella-tenant``).
        timeout_s: Deadline of each unary call.
        credentials: TLS channel credentials; ``None`` is plaintext unless ``tls_ca_file``.
        tls_ca_file: PEM file of the CA that signed the server's certificate.
        channel_options: gRPC channel arguments.
        wait_for_ready: A call made while the service is unreachable waits (up to
            ``timeout_s``) for it to come back instead of failing at once with
            ``UnavailableError`` (gRPC's wait-for-ready).

    Raises:
        ValueError: Both ``credentials`` and ``tls_ca_file``.
        OSError: ``tls_ca_file`` cannot be read.
    """

    def __init__(
        self,
        target: str,
        *,
        token: Token,
        tenant: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
        tls_ca_file: str | os.PathLike[str] | None = None,
        channel_options: Sequence[tuple[str, Any]] = DEFAULT_CHANNEL_OPTIONS,
        wait_for_ready: bool = False,
    ) -> None:
        self._token = token
        self._tenant = tenant
        self._timeout_s = timeout_s
        self._wait_for_ready = wait_for_ready
        self._channel = aio_channel(
            target, channel_options, resolve_credentials(credentials, tls_ca_file)
        )
        self._scheduler = scheduler_pb2_grpc.SchedulerServiceStub(self._channel)
        self._events = events_pb2_grpc.EventStreamServiceStub(self._channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel (calls in flight are canceled)."""
        await self._channel.close()

    async def _call(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await method(
                request,
                metadata=call_metadata(self._token, self._tenant),
                timeout=self._timeout_s,
                wait_for_ready=self._wait_for_ready,
            )
        except grpc.RpcError as exc:
            raise RPCError.from_grpc(exc) from None

    async def _pages(
        self, method: Callable[..., Awaitable[Any]], request: Any, field: str
    ) -> list[Any]:
        items: list[Any] = []
        while True:
            response = await self._call(method, request)
            items.extend(getattr(response, field))
            if not response.next_page_token:
                return items
            request.page_token = response.next_page_token

    # ------------------------------------------------------------------ sources

    async def create_source(
        self,
        name: str,
        source_type: str,
        *,
        host: str = "",
        base_url: str = "",
        job_types: Iterable[str] = (),
        max_active: int = 0,
        labels: Mapping[str, str] | None = None,
        reason: str = "",
    ) -> resources_pb2.Source:
        """Register a source (an upstream that jobs fetch from); returns it with its id."""
        source = resources_pb2.Source(
            name=name,
            source_type=source_type,
            host=host,
            base_url=base_url,
            enabled=True,
            job_types=list(job_types),
            max_active=max_active,
            labels=dict(labels or {}),
        )
        request = scheduler_pb2.CreateSourceRequest(source=source, operator=_operator(reason, ""))
        return (await self._call(self._scheduler.CreateSource, request)).source

    async def get_source(self, source_id: str) -> resources_pb2.Source:
        """One source by id."""
        request = scheduler_pb2.GetSourceRequest(source_id=source_id)
        return (await self._call(self._scheduler.GetSource, request)).source

    async def list_sources(self, *, source_type: str = "") -> list[resources_pb2.Source]:
        """Every source of the tenant (all pages)."""
        request = scheduler_pb2.ListSourcesRequest(source_type=source_type)
        return await self._pages(self._scheduler.ListSources, request, "sources")

    async def delete_source(self, source_id: str, *, reason: str = "") -> None:
        """Delete a source."""
        request = scheduler_pb2.DeleteSourceRequest(
            source_id=source_id, operator=_operator(reason, "")
        )
        await self._call(self._scheduler.DeleteSource, request)

    # ------------------------------------------------------------------ runs

    async def create_run(self, run: RunBuilder) -> CreatedRun:
        """Create a run from a :class:`RunBuilder` (all its jobs in one transaction).

        Raises:
            ValueError: The builder has no job.
            RPCError: ``InvalidArgumentError`` for a cycle or an unknown job type...
        """
        response = await self._call(self._scheduler.CreateRun, run.to_request())
        return CreatedRun(response.run, list(response.jobs), response.existing)

    async def get_run(self, run_id: str) -> resources_pb2.Run:
        """One run by id (``job_counts`` maps state names to counts)."""
        return (
            await self._call(self._scheduler.GetRun, scheduler_pb2.GetRunRequest(run_id=run_id))
        ).run

    async def get_run_dag(self, run_id: str) -> scheduler_pb2.GetRunDagResponse:
        """A run with its jobs and edges."""
        request = scheduler_pb2.GetRunDagRequest(run_id=run_id)
        return await self._call(self._scheduler.GetRunDag, request)

    async def list_runs(
        self,
        *,
        states: Iterable[common_pb2.RunState.ValueType] = (),
        source_id: str = "",
        project: str = "",
    ) -> list[resources_pb2.Run]:
        """Runs of the tenant, filtered (all pages)."""
        request = scheduler_pb2.ListRunsRequest(
            states=list(states), source_id=source_id, project=project
        )
        return await self._pages(self._scheduler.ListRuns, request, "runs")

    async def cancel_run(self, run_id: str, *, reason: str = "") -> resources_pb2.Run:
        """Cancel a run's jobs that have not finished."""
        request = scheduler_pb2.CancelRunRequest(run_id=run_id, operator=_operator(reason, ""))
        return (await self._call(self._scheduler.CancelRun, request)).run

    async def resume_run(self, run_id: str, *, reason: str) -> scheduler_pb2.ResumeRunResponse:
        """Resume a failed run from its failure: dead jobs re-run, their canceled
        descendants revive, nothing that succeeded runs again."""
        request = scheduler_pb2.ResumeRunRequest(run_id=run_id, operator=_operator(reason, ""))
        return await self._call(self._scheduler.ResumeRun, request)

    # ------------------------------------------------------------------ jobs

    async def submit_job(
        self,
        job_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        run_id: str = "",
        **options: Any,
    ) -> Submitted:
        """Submit one job (options as :func:`~stella_orchestrator.producer.job_spec`, e.g.
        ``idempotency_key=``, ``source_id=``, ``priority=``, ``depends_on_job_ids=``).

        With an ``idempotency_key`` the call is safe to repeat: a key seen before returns
        the first job with ``existing=True``.
        """
        request = scheduler_pb2.SubmitJobRequest(
            job=job_spec(job_type, payload, **options), run_id=run_id
        )
        response = await self._call(self._scheduler.SubmitJob, request)
        return Submitted(response.job, response.existing)

    async def submit_jobs(
        self, specs: Iterable[resources_pb2.JobSpec], *, run_id: str = ""
    ) -> list[Submitted]:
        """Submit several jobs in one transaction (specs from :func:`job_spec`)."""
        request = scheduler_pb2.SubmitJobsRequest(jobs=list(specs), run_id=run_id)
        response = await self._call(self._scheduler.SubmitJobs, request)
        return [Submitted(j, e) for j, e in zip(response.jobs, response.existing, strict=True)]

    async def get_job(self, job_id: str) -> resources_pb2.Job:
        """One job by id (state, attempt, last error, result...)."""
        return (
            await self._call(self._scheduler.GetJob, scheduler_pb2.GetJobRequest(job_id=job_id))
        ).job

    async def list_jobs(
        self,
        *,
        states: Iterable[common_pb2.JobState.ValueType] = (),
        job_type: str = "",
        run_id: str = "",
        source_id: str = "",
    ) -> list[resources_pb2.Job]:
        """Jobs of the tenant, filtered (all pages)."""
        request = scheduler_pb2.ListJobsRequest(
            states=list(states), job_type=job_type, run_id=run_id, source_id=source_id
        )
        return await self._pages(self._scheduler.ListJobs, request, "jobs")

    async def cancel_job(self, job_id: str, *, reason: str = "") -> resources_pb2.Job:
        """Cancel a job (a running handler is canceled at its next heartbeat)."""
        request = scheduler_pb2.CancelJobRequest(job_id=job_id, operator=_operator(reason, ""))
        return (await self._call(self._scheduler.CancelJob, request)).job

    async def retry_job(self, job_id: str, *, reason: str = "") -> resources_pb2.Job:
        """Queue a dead or canceled job again (same id)."""
        request = scheduler_pb2.RetryJobRequest(job_id=job_id, operator=_operator(reason, ""))
        return (await self._call(self._scheduler.RetryJob, request)).job

    async def prioritize_job(
        self, job_id: str, priority: int, *, reason: str = ""
    ) -> resources_pb2.Job:
        """Change a queued job's priority."""
        request = scheduler_pb2.PrioritizeJobRequest(
            job_id=job_id, priority=priority, operator=_operator(reason, "")
        )
        return (await self._call(self._scheduler.PrioritizeJob, request)).job

    # ------------------------------------------------------------------ waiting, events

    async def wait_job(self, job_id: str, *, timeout_s: float | None = None) -> resources_pb2.Job:
        """Wait until a job is ``succeeded``, ``dead`` or ``canceled`` and return it.

        Raises:
            TimeoutError: ``timeout_s`` passed first.
        """
        return await self._wait(
            lambda: self.get_job(job_id), lambda j: j.state in JOB_TERMINAL, timeout_s
        )

    async def wait_run(self, run_id: str, *, timeout_s: float | None = None) -> resources_pb2.Run:
        """Wait until a run is ``succeeded``, ``failed`` or ``canceled`` and return it.

        Raises:
            TimeoutError: ``timeout_s`` passed first.
        """
        return await self._wait(
            lambda: self.get_run(run_id), lambda r: r.state in RUN_TERMINAL, timeout_s
        )

    async def _wait(
        self, fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float | None
    ) -> T:
        # Polls with a growing pause: one cheap read per second at most, and no event-stream
        # bookkeeping (an event between two reads is never missed: the state is read again).
        pause = 0.05
        async with asyncio.timeout(timeout_s):
            while True:
                value = await fetch()
                if done(value):
                    return value
                await asyncio.sleep(pause)
                pause = min(pause * 2, WAIT_POLL_MAX_S)

    async def watch(
        self,
        *,
        after_seq: int = -1,
        run_id: str = "",
        source_id: str = "",
        job_id: str = "",
        types: Iterable[str] = (),
        max_retries: int | None = None,
        rng: random.Random | None = None,
    ) -> AsyncGenerator[events_pb2.Event, None]:
        """Follow the event log live, resuming by itself after a broken stream.

        Args:
            after_seq: Yield events with a greater seq: ``0`` from the oldest retained event,
                ``-1`` only new ones, or the last ``seq`` you processed to resume after a
                restart of your own (events are delivered at least once, in seq order).
            run_id: Only events of this run.
            source_id: Only events of this source.
            job_id: Only events of this job.
            types: Only these event types (``"job.succeeded"``...).
            max_retries: Consecutive failed reconnects before the last error is raised;
                ``None`` retries forever.
            rng: Randomness for the backoff jitter.

        Yields:
            Each event once per connection, in seq order.

        Raises:
            RPCError: A status that retrying cannot fix, or retries ran out.
        """
        backoff = Backoff(rng=rng or random.Random())
        failures = 0
        seq = after_seq
        while True:
            request = events_pb2.StreamEventsRequest(
                after_seq=seq,
                run_id=run_id,
                source_id=source_id,
                job_id=job_id,
                types=list(types),
            )
            stream = self._events.StreamEvents(
                request, metadata=call_metadata(self._token, self._tenant)
            )
            try:
                async for response in stream:
                    failures = 0
                    backoff.reset()
                    if seq < 0 and response.head_seq:
                        seq = response.head_seq  # started at the head: resume from there
                    for event in response.events:
                        seq = max(seq, event.seq)
                        yield event
            except grpc.RpcError as exc:
                error = RPCError.from_grpc(exc)
                failures += 1
                if error.code not in WATCH_RETRY_CODES or (
                    max_retries is not None and failures > max_retries
                ):
                    raise error from None
                await asyncio.sleep(backoff.next_delay())
            finally:
                stream.cancel()

    async def list_events(
        self,
        *,
        after_seq: int = 0,
        run_id: str = "",
        source_id: str = "",
        job_id: str = "",
        types: Iterable[str] = (),
        limit: int = 1000,
    ) -> list[events_pb2.Event]:
        """Past events in seq order (one page of at most ``limit``)."""
        request = events_pb2.ListEventsRequest(
            after_seq=after_seq,
            page_size=limit,
            run_id=run_id,
            source_id=source_id,
            job_id=job_id,
            types=list(types),
        )
        return list((await self._call(self._events.ListEvents, request)).events)

    # ------------------------------------------------------------------ dead letters

    async def list_dead_letters(
        self,
        *,
        job_type: str = "",
        source_id: str = "",
        error_class: common_pb2.ErrorClass.ValueType = common_pb2.ERROR_CLASS_UNSPECIFIED,
    ) -> list[resources_pb2.DeadLetterEntry]:
        """Dead-letter entries (jobs that exhausted their attempts), all pages."""
        request = operations_pb2.ListDeadLettersRequest(
            job_type=job_type, source_id=source_id, error_class=error_class
        )
        return await self._pages(self._scheduler.ListDeadLetters, request, "entries")

    async def replay_dead_letter(
        self, entry_id: str, *, reason: str, ticket: str = ""
    ) -> operations_pb2.ReplayDeadLetterResponse:
        """Retry a dead-lettered job (the same job, ``ready`` again; ``response.job``) and
        mark its entry replayed (``response.entry``); audited with ``reason``."""
        request = operations_pb2.ReplayDeadLetterRequest(
            entry_id=entry_id, operator=_operator(reason, ticket)
        )
        return await self._call(self._scheduler.ReplayDeadLetter, request)

    # ------------------------------------------------------------------ quotas

    async def create_quota(
        self,
        job_type: str,
        *,
        max_active: int = 0,
        max_per_hour: int = 0,
        burst: int = 0,
        max_queued: int = 0,
        reason: str,
    ) -> resources_pb2.Quota:
        """Limit a job type (0 leaves a limit unset)."""
        quota = resources_pb2.Quota(
            job_type=job_type,
            max_active=max_active,
            max_per_hour=max_per_hour,
            burst=burst,
            max_queued=max_queued,
        )
        request = scheduler_pb2.CreateQuotaRequest(quota=quota, operator=_operator(reason, ""))
        return (await self._call(self._scheduler.CreateQuota, request)).quota

    async def list_quotas(self, *, job_type: str = "") -> list[resources_pb2.Quota]:
        """Quotas of the tenant (all pages)."""
        request = scheduler_pb2.ListQuotasRequest(job_type=job_type)
        return await self._pages(self._scheduler.ListQuotas, request, "quotas")

    async def update_quota(
        self,
        quota_id: str,
        *,
        max_active: int | None = None,
        max_per_hour: int | None = None,
        burst: int | None = None,
        max_queued: int | None = None,
        reason: str,
    ) -> resources_pb2.Quota:
        """Change the limits given (the others keep their values)."""
        limits = {
            "max_active": max_active,
            "max_per_hour": max_per_hour,
            "burst": burst,
            "max_queued": max_queued,
        }
        changed = {name: value for name, value in limits.items() if value is not None}
        quota = resources_pb2.Quota(id=quota_id)
        for name, value in changed.items():
            setattr(quota, name, value)
        request = scheduler_pb2.UpdateQuotaRequest(
            quota=quota,
            update_mask=field_mask_pb2.FieldMask(paths=sorted(changed)),
            operator=_operator(reason, ""),
        )
        return (await self._call(self._scheduler.UpdateQuota, request)).quota

    async def delete_quota(self, quota_id: str, *, reason: str) -> None:
        """Remove a quota."""
        request = scheduler_pb2.DeleteQuotaRequest(
            quota_id=quota_id, operator=_operator(reason, "")
        )
        await self._call(self._scheduler.DeleteQuota, request)

    async def pause_jobs(
        self, job_type: str, *, reason: str, ticket: str = ""
    ) -> resources_pb2.Quota:
        """Stop leasing jobs of a type (queued jobs wait); audited."""
        request = scheduler_pb2.PauseJobsRequest(
            job_type=job_type, operator=_operator(reason, ticket)
        )
        return (await self._call(self._scheduler.PauseJobs, request)).quota

    async def resume_jobs(
        self, job_type: str, *, reason: str, ticket: str = ""
    ) -> resources_pb2.Quota:
        """Lease jobs of a paused type again; audited."""
        request = scheduler_pb2.ResumeJobsRequest(
            job_type=job_type, operator=_operator(reason, ticket)
        )
        return (await self._call(self._scheduler.ResumeJobs, request)).quota

    # ------------------------------------------------------------------ schedules

    async def create_schedule(
        self,
        name: str,
        cron: str,
        run: RunBuilder,
        *,
        source_id: str = "",
        enabled: bool = True,
        reason: str = "",
    ) -> resources_pb2.Schedule:
        """Create a run from ``run``'s template at every ``cron`` fire time (UTC)."""
        built = run.to_request()
        template = resources_pb2.RunTemplate(
            name=built.name, jobs=built.jobs, project=built.project, labels=built.labels
        )
        schedule = resources_pb2.Schedule(
            name=name, cron=cron, source_id=source_id, run_template=template, enabled=enabled
        )
        request = scheduler_pb2.CreateScheduleRequest(
            schedule=schedule, operator=_operator(reason, "")
        )
        return (await self._call(self._scheduler.CreateSchedule, request)).schedule

    async def list_schedules(self) -> list[resources_pb2.Schedule]:
        """Schedules of the tenant (all pages), with their next fire times."""
        request = scheduler_pb2.ListSchedulesRequest()
        return await self._pages(self._scheduler.ListSchedules, request, "schedules")

    async def delete_schedule(self, schedule_id: str, *, reason: str = "") -> None:
        """Remove a schedule (runs it created stay)."""
        request = scheduler_pb2.DeleteScheduleRequest(
            schedule_id=schedule_id, operator=_operator(reason, "")
        )
        await self._call(self._scheduler.DeleteSchedule, request)

    # ------------------------------------------------------------------ backfills

    async def create_backfill(
        self,
        source_id: str,
        job_type: str,
        start: datetime,
        end: datetime,
        window: timedelta,
        *,
        payload: Mapping[str, Any] | None = None,
        priority: int | None = None,
        dry_run: bool = False,
        reason: str,
        ticket: str,
    ) -> scheduler_pb2.CreateBackfillResponse:
        """Re-ingest ``[start, end)`` of a source in windows of ``window``, one job each.

        Backfills are audited: ``reason`` and ``ticket`` (``"OPS-1234"``) are required.
        ``dry_run=True`` creates nothing and returns the ``preview`` (windows, jobs, quota
        impact, overlapping backfills).
        """
        request = scheduler_pb2.CreateBackfillRequest(
            source_id=source_id,
            job_type=job_type,
            range=time_window(start, end),
            priority=priority,
            dry_run=dry_run,
            operator=_operator(reason, ticket),
        )
        request.window_size.FromTimedelta(window)
        if payload is not None:
            request.payload.CopyFrom(to_struct(payload))
        return await self._call(self._scheduler.CreateBackfill, request)

    async def get_backfill(self, backfill_id: str) -> resources_pb2.Backfill:
        """One backfill with its progress counts."""
        request = scheduler_pb2.GetBackfillRequest(backfill_id=backfill_id)
        return (await self._call(self._scheduler.GetBackfill, request)).backfill

    async def list_backfills(self, *, source_id: str = "") -> list[resources_pb2.Backfill]:
        """Backfills of the tenant (all pages)."""
        request = scheduler_pb2.ListBackfillsRequest(source_id=source_id)
        return await self._pages(self._scheduler.ListBackfills, request, "backfills")

    async def cancel_backfill(
        self, backfill_id: str, *, reason: str = ""
    ) -> resources_pb2.Backfill:
        """Cancel a backfill's jobs that have not run."""
        request = scheduler_pb2.CancelBackfillRequest(
            backfill_id=backfill_id, operator=_operator(reason, "")
        )
        return (await self._call(self._scheduler.CancelBackfill, request)).backfill
