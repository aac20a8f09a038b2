"""The blocking producer client: :class:`AsyncClient` driven from a private event loop.

One implementation serves both: each :class:`Client` owns a daemon thread running an event
loop that holds the :class:`AsyncClient` (a ``grpc.aio`` channel belongs to one loop), and
every method hands its coroutine to that loop and blocks on the result. The methods below
mirror :class:`AsyncClient` one for one (same arguments, same errors).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import grpc

from stella.orchestrator.v1 import (
    common_pb2,
    events_pb2,
    operations_pb2,
    resources_pb2,
    scheduler_pb2,
)
from stella_orchestrator._connection import DEFAULT_CHANNEL_OPTIONS, Token
from stella_orchestrator.producer._client import (
    DEFAULT_TIMEOUT_S,
    AsyncClient,
    CreatedRun,
    Submitted,
)
from stella_orchestrator.producer._dag import RunBuilder

T = TypeVar("T")


class Client:
    """Submit and follow work on the scheduler from blocking code.

    ``with Client("localhost:50051", token=TOKEN) as client: ...``; arguments as
    :class:`AsyncClient`. Thread-safe: calls from several threads share the one channel.
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
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="stella-producer", daemon=True
        )
        self._thread.start()

        async def build() -> AsyncClient:
            return AsyncClient(
                target,
                token=token,
                tenant=tenant,
                timeout_s=timeout_s,
                credentials=credentials,
                tls_ca_file=tls_ca_file,
                channel_options=channel_options,
                wait_for_ready=wait_for_ready,
            )

        try:
            self._aio = self._run(build())
        except BaseException:
            self._stop_loop()
            raise

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel and stop the client's thread (idempotent)."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._aio.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, coro: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result()

    def watch(
        self,
        *,
        after_seq: int = -1,
        run_id: str = "",
        source_id: str = "",
        job_id: str = "",
        types: Iterable[str] = (),
        max_retries: int | None = None,
        rng: random.Random | None = None,
    ) -> Iterator[events_pb2.Event]:
        """Follow the event log live, resuming by itself (:meth:`AsyncClient.watch`)."""
        stream = self._aio.watch(
            after_seq=after_seq,
            run_id=run_id,
            source_id=source_id,
            job_id=job_id,
            types=types,
            max_retries=max_retries,
            rng=rng,
        )
        try:
            while True:
                try:
                    yield self._run(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            if not self._loop.is_closed():
                self._run(stream.aclose())

    def create_source(
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
        """Blocking :meth:`AsyncClient.create_source`."""
        return self._run(
            self._aio.create_source(
                name,
                source_type,
                host=host,
                base_url=base_url,
                job_types=job_types,
                max_active=max_active,
                labels=labels,
                reason=reason,
            )
        )

    def get_source(self, source_id: str) -> resources_pb2.Source:
        """One source by id (:meth:`AsyncClient.get_source`)."""
        return self._run(self._aio.get_source(source_id))

    def list_sources(self, *, source_type: str = "") -> list[resources_pb2.Source]:
        """Every source of the tenant (all pages) (:meth:`AsyncClient.list_sources`)."""
        return self._run(self._aio.list_sources(source_type=source_type))

    def delete_source(self, source_id: str, *, reason: str = "") -> None:
        """Delete a source (:meth:`AsyncClient.delete_source`)."""
        return self._run(self._aio.delete_source(source_id, reason=reason))

    def create_run(self, run: RunBuilder) -> CreatedRun:
        """Blocking :meth:`AsyncClient.create_run`."""
        return self._run(self._aio.create_run(run))

    def get_run(self, run_id: str) -> resources_pb2.Run:
        """Blocking :meth:`AsyncClient.get_run`."""
        return self._run(self._aio.get_run(run_id))

    def get_run_dag(self, run_id: str) -> scheduler_pb2.GetRunDagResponse:
        """A run with its jobs and edges (:meth:`AsyncClient.get_run_dag`)."""
        return self._run(self._aio.get_run_dag(run_id))

    def list_runs(
        self,
        *,
        states: Iterable[common_pb2.RunState.ValueType] = (),
        source_id: str = "",
        project: str = "",
    ) -> list[resources_pb2.Run]:
        """Runs of the tenant, filtered (all pages) (:meth:`AsyncClient.list_runs`)."""
        return self._run(self._aio.list_runs(states=states, source_id=source_id, project=project))

    def cancel_run(self, run_id: str, *, reason: str = "") -> resources_pb2.Run:
        """Cancel a run's jobs that have not finished (:meth:`AsyncClient.cancel_run`)."""
        return self._run(self._aio.cancel_run(run_id, reason=reason))

    def resume_run(self, run_id: str, *, reason: str) -> scheduler_pb2.ResumeRunResponse:
        """Blocking :meth:`AsyncClient.resume_run`."""
        return self._run(self._aio.resume_run(run_id, reason=reason))

    def submit_job(
        self,
        job_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        run_id: str = "",
        **options: Any,
    ) -> Submitted:
        """Blocking :meth:`AsyncClient.submit_job`."""
        return self._run(self._aio.submit_job(job_type, payload, run_id=run_id, **options))

    def submit_jobs(
        self, specs: Iterable[resources_pb2.JobSpec], *, run_id: str = ""
    ) -> list[Submitted]:
        """Blocking :meth:`AsyncClient.submit_jobs`."""
        return self._run(self._aio.submit_jobs(specs, run_id=run_id))

    def get_job(self, job_id: str) -> resources_pb2.Job:
        """One job by id (state, attempt, last error, result...) (:meth:`AsyncClient.get_job`)."""
        return self._run(self._aio.get_job(job_id))

    def list_jobs(
        self,
        *,
        states: Iterable[common_pb2.JobState.ValueType] = (),
        job_type: str = "",
        run_id: str = "",
        source_id: str = "",
    ) -> list[resources_pb2.Job]:
        """Jobs of the tenant, filtered (all pages) (:meth:`AsyncClient.list_jobs`)."""
        return self._run(
            self._aio.list_jobs(
                states=states, job_type=job_type, run_id=run_id, source_id=source_id
            )
        )

    def cancel_job(self, job_id: str, *, reason: str = "") -> resources_pb2.Job:
        """Blocking :meth:`AsyncClient.cancel_job`."""
        return self._run(self._aio.cancel_job(job_id, reason=reason))

    def retry_job(self, job_id: str, *, reason: str = "") -> resources_pb2.Job:
        """Queue a dead or canceled job again (same id) (:meth:`AsyncClient.retry_job`)."""
        return self._run(self._aio.retry_job(job_id, reason=reason))

    def prioritize_job(self, job_id: str, priority: int, *, reason: str = "") -> resources_pb2.Job:
        """Change a queued job's priority (:meth:`AsyncClient.prioritize_job`)."""
        return self._run(self._aio.prioritize_job(job_id, priority, reason=reason))

    def wait_job(self, job_id: str, *, timeout_s: float | None = None) -> resources_pb2.Job:
        """Blocking :meth:`AsyncClient.wait_job`."""
        return self._run(self._aio.wait_job(job_id, timeout_s=timeout_s))

    def wait_run(self, run_id: str, *, timeout_s: float | None = None) -> resources_pb2.Run:
        """Blocking :meth:`AsyncClient.wait_run`."""
        return self._run(self._aio.wait_run(run_id, timeout_s=timeout_s))

    def list_events(
        self,
        *,
        after_seq: int = 0,
        run_id: str = "",
        source_id: str = "",
        job_id: str = "",
        types: Iterable[str] = (),
        limit: int = 1000,
    ) -> list[events_pb2.Event]:
        """Blocking :meth:`AsyncClient.list_events`."""
        return self._run(
            self._aio.list_events(
                after_seq=after_seq,
                run_id=run_id,
                source_id=source_id,
                job_id=job_id,
                types=types,
                limit=limit,
            )
        )

    def list_dead_letters(
        self,
        *,
        job_type: str = "",
        source_id: str = "",
        error_class: common_pb2.ErrorClass.ValueType = common_pb2.ERROR_CLASS_UNSPECIFIED,
    ) -> list[resources_pb2.DeadLetterEntry]:
        """Blocking :meth:`AsyncClient.list_dead_letters`."""
        return self._run(
            self._aio.list_dead_letters(
                job_type=job_type, source_id=source_id, error_class=error_class
            )
        )

    def replay_dead_letter(
        self, entry_id: str, *, reason: str, ticket: str = ""
    ) -> operations_pb2.ReplayDeadLetterResponse:
        """Blocking :meth:`AsyncClient.replay_dead_letter`."""
        return self._run(self._aio.replay_dead_letter(entry_id, reason=reason, ticket=ticket))

    def create_quota(
        self,
        job_type: str,
        *,
        max_active: int = 0,
        max_per_hour: int = 0,
        burst: int = 0,
        max_queued: int = 0,
        reason: str,
    ) -> resources_pb2.Quota:
        """Limit a job type (0 leaves a limit unset) (:meth:`AsyncClient.create_quota`)."""
        return self._run(
            self._aio.create_quota(
                job_type,
                max_active=max_active,
                max_per_hour=max_per_hour,
                burst=burst,
                max_queued=max_queued,
                reason=reason,
            )
        )

    def list_quotas(self, *, job_type: str = "") -> list[resources_pb2.Quota]:
        """Quotas of the tenant (all pages) (:meth:`AsyncClient.list_quotas`)."""
        return self._run(self._aio.list_quotas(job_type=job_type))

    def update_quota(
        self,
        quota_id: str,
        *,
        max_active: int | None = None,
        max_per_hour: int | None = None,
        burst: int | None = None,
        max_queued: int | None = None,
        reason: str,
    ) -> resources_pb2.Quota:
        """Blocking :meth:`AsyncClient.update_quota`."""
        return self._run(
            self._aio.update_quota(
                quota_id,
                max_active=max_active,
                max_per_hour=max_per_hour,
                burst=burst,
                max_queued=max_queued,
                reason=reason,
            )
        )

    def delete_quota(self, quota_id: str, *, reason: str) -> None:
        """Remove a quota (:meth:`AsyncClient.delete_quota`)."""
        return self._run(self._aio.delete_quota(quota_id, reason=reason))

    def pause_jobs(self, job_type: str, *, reason: str, ticket: str = "") -> resources_pb2.Quota:
        """Blocking :meth:`AsyncClient.pause_jobs`."""
        return self._run(self._aio.pause_jobs(job_type, reason=reason, ticket=ticket))

    def resume_jobs(self, job_type: str, *, reason: str, ticket: str = "") -> resources_pb2.Quota:
        """Lease jobs of a paused type again; audited (:meth:`AsyncClient.resume_jobs`)."""
        return self._run(self._aio.resume_jobs(job_type, reason=reason, ticket=ticket))

    def create_schedule(
        self,
        name: str,
        cron: str,
        run: RunBuilder,
        *,
        source_id: str = "",
        enabled: bool = True,
        reason: str = "",
    ) -> resources_pb2.Schedule:
        """Blocking :meth:`AsyncClient.create_schedule`."""
        return self._run(
            self._aio.create_schedule(
                name, cron, run, source_id=source_id, enabled=enabled, reason=reason
            )
        )

    def list_schedules(self) -> list[resources_pb2.Schedule]:
        """Blocking :meth:`AsyncClient.list_schedules`."""
        return self._run(self._aio.list_schedules())

    def delete_schedule(self, schedule_id: str, *, reason: str = "") -> None:
        """Remove a schedule (runs it created stay) (:meth:`AsyncClient.delete_schedule`)."""
        return self._run(self._aio.delete_schedule(schedule_id, reason=reason))

    def create_backfill(
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
        """Blocking :meth:`AsyncClient.create_backfill`."""
        return self._run(
            self._aio.create_backfill(
                source_id,
                job_type,
                start,
                end,
                window,
                payload=payload,
                priority=priority,
                dry_run=dry_run,
                reason=reason,
                ticket=ticket,
            )
        )

    def get_backfill(self, backfill_id: str) -> resources_pb2.Backfill:
        """One backfill with its progress counts (:meth:`AsyncClient.get_backfill`)."""
        return self._run(self._aio.get_backfill(backfill_id))

    def list_backfills(self, *, source_id: str = "") -> list[resources_pb2.Backfill]:
        """Backfills of the tenant (all pages) (:meth:`AsyncClient.list_backfills`)."""
        return self._run(self._aio.list_backfills(source_id=source_id))

    def cancel_backfill(self, backfill_id: str, *, reason: str = "") -> resources_pb2.Backfill:
        """Cancel a backfill's jobs that have not run (:meth:`AsyncClient.cancel_backfill`)."""
        return self._run(self._aio.cancel_backfill(backfill_id, reason=reason))
