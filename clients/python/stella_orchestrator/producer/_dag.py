"""The run builder: a DAG of job specs named by key, sent as one ``CreateRun``.

``run.job("a", ...)`` adds a job; ``.then("b", ...)`` adds one that depends on the node it is
called on; ``.after(*nodes)`` adds edges to existing jobs. Keys are unique within a run and
edges only point at keys already added, so a builder can never describe a cycle (the server
checks again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import struct_pb2

from stella.orchestrator.v1 import common_pb2, resources_pb2, scheduler_pb2


@dataclass(frozen=True)
class Retry:
    """A job's retry policy; ``None`` fields take the server's defaults."""

    max_attempts: int = 0
    initial_backoff: timedelta | None = None
    max_backoff: timedelta | None = None
    multiplier: float = 0.0

    def to_proto(self) -> common_pb2.RetryPolicy:
        policy = common_pb2.RetryPolicy(
            max_attempts=self.max_attempts, backoff_multiplier=self.multiplier
        )
        if self.initial_backoff is not None:
            policy.initial_backoff.FromTimedelta(self.initial_backoff)
        if self.max_backoff is not None:
            policy.max_backoff.FromTimedelta(self.max_backoff)
        return policy


def job_spec(
    job_type: str,
    payload: Mapping[str, Any] | None = None,
    *,
    key: str = "",
    source_id: str = "",
    project: str = "",
    priority: int = 0,
    idempotency_key: str = "",
    correlation_id: str = "",
    retry: Retry | None = None,
    depends_on: tuple[str, ...] = (),
    depends_on_job_ids: tuple[str, ...] = (),
    not_before: datetime | None = None,
    window: tuple[datetime, datetime] | None = None,
    labels: Mapping[str, str] | None = None,
) -> resources_pb2.JobSpec:
    """Build a ``JobSpec``.

    Args:
        job_type: What a worker registers a handler for (``"advisory.ingest"``).
        payload: The job's JSON object (numbers travel as JSON doubles).
        key: The job's name within its run (what ``depends_on`` names).
        source_id: The source the job fetches from (rate limits, pauses, watermarks).
        project: Project within the tenant.
        priority: Higher runs first.
        idempotency_key: Submitting the same key again returns the first job
            (``existing=True``) instead of a second one.
        correlation_id: Carried into every event of the job.
        retry: Retry policy (default: the server's).
        depends_on: Keys of jobs of the same run that must succeed first.
        depends_on_job_ids: Ids of existing jobs that must succeed first.
        not_before: Earliest time the job may be leased.
        window: The event-time window ``(start, end)`` the job covers (watermarks).
        labels: Free-form labels.

    Returns:
        The spec.
    """
    spec = resources_pb2.JobSpec(
        key=key,
        job_type=job_type,
        source_id=source_id,
        project=project,
        priority=priority,
        idempotency_key=idempotency_key,
        correlation_id=correlation_id,
        depends_on=list(depends_on),
        depends_on_job_ids=list(depends_on_job_ids),
        labels=dict(labels or {}),
    )
    if payload is not None:
        spec.payload.CopyFrom(to_struct(payload))
    if retry is not None:
        spec.retry_policy.CopyFrom(retry.to_proto())
    if not_before is not None:
        spec.not_before.FromDatetime(not_before)
    if window is not None:
        spec.event_time_window.CopyFrom(time_window(*window))
    return spec


def to_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """A JSON object as a ``google.protobuf.Struct``."""
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    return struct


def time_window(start: datetime, end: datetime) -> common_pb2.TimeWindow:
    """A ``TimeWindow`` from two aware datetimes (``start`` inclusive, ``end`` exclusive)."""
    window = common_pb2.TimeWindow()
    window.start.FromDatetime(start)
    window.end.FromDatetime(end)
    return window


@dataclass
class JobNode:
    """A job of a :class:`RunBuilder`; chain :meth:`then` to add its dependants."""

    run: RunBuilder
    key: str

    def then(
        self, key: str, job_type: str, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> JobNode:
        """Add job ``key`` that runs after this one succeeded (see :func:`job_spec`)."""
        depends = tuple(options.pop("depends_on", ()))
        return self.run.job(key, job_type, payload, depends_on=(self.key, *depends), **options)

    def after(self, *nodes: JobNode | str) -> JobNode:
        """Make this job also wait for ``nodes`` (nodes or keys already in the run)."""
        self.run.add_edges(self.key, [n.key if isinstance(n, JobNode) else n for n in nodes])
        return self


@dataclass
class RunBuilder:
    """A run (a named DAG of jobs) to create with ``client.create_run(builder)``.

    Example::

        run = RunBuilder("nvd-2026-12-04", project="feeds", idempotency_key="nvd-2026-12-04")
        fetch = run.job("fetch", "advisory.fetch", {"feed": "nvd"})
        fetch.then("parse", "advisory.parse").then("index", "advisory.index")
        run.job("notify", "advisory.notify").after("index")

    Args:
        name: Shown in the Console and events.
        project: Project within the tenant.
        source_id: The run's source (each job defaults to it server-side).
        idempotency_key: Creating a run with the same key again returns the first run.
        correlation_id: Carried into every event of the run.
        labels: Free-form labels.
    """

    name: str
    project: str = ""
    source_id: str = ""
    idempotency_key: str = ""
    correlation_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    _specs: dict[str, resources_pb2.JobSpec] = field(default_factory=dict, repr=False)

    def job(
        self, key: str, job_type: str, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> JobNode:
        """Add job ``key`` (options as :func:`job_spec`; ``depends_on`` names keys).

        Raises:
            ValueError: ``key`` is empty or taken, or a ``depends_on`` key is unknown.
        """
        if not key:
            raise ValueError("a job of a run needs a key")
        if key in self._specs:
            raise ValueError(f"job key {key!r} is already in run {self.name!r}")
        depends = tuple(options.pop("depends_on", ()))
        self._check_known(depends)
        self._specs[key] = job_spec(job_type, payload, key=key, depends_on=depends, **options)
        return JobNode(self, key)

    def add_edges(self, key: str, parents: list[str]) -> None:
        """Make job ``key`` depend on ``parents`` too.

        Raises:
            ValueError: A key is unknown, or an edge points at the job itself.
        """
        self._check_known((key, *parents))
        if key in parents:
            raise ValueError(f"job {key!r} cannot depend on itself")
        spec = self._specs[key]
        spec.depends_on.extend(p for p in parents if p not in spec.depends_on)

    @property
    def keys(self) -> list[str]:
        """The jobs' keys in the order they were added."""
        return list(self._specs)

    def to_request(self) -> scheduler_pb2.CreateRunRequest:
        """The ``CreateRunRequest`` this builder describes.

        Raises:
            ValueError: The run has no job.
        """
        if not self._specs:
            raise ValueError(f"run {self.name!r} has no job")
        return scheduler_pb2.CreateRunRequest(
            project=self.project,
            name=self.name,
            source_id=self.source_id,
            correlation_id=self.correlation_id,
            idempotency_key=self.idempotency_key,
            labels=self.labels,
            jobs=list(self._specs.values()),
        )

    def _check_known(self, keys: tuple[str, ...]) -> None:
        unknown = [k for k in keys if k not in self._specs]
        if unknown:
            raise ValueError(f"run {self.name!r} has no job {', '.join(map(repr, unknown))}")
