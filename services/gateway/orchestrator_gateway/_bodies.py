"""Request bodies of the REST API (what clients send; responses come from ``_models``), and
the protobuf forms of the parts several routes send (:func:`job_spec`, :func:`struct`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from google.protobuf import struct_pb2
from pydantic import BaseModel, ConfigDict, Field

from orchestrator_gateway._problems import ProblemError
from stella.orchestrator.v1 import resources_pb2

_Name = Field(min_length=1, max_length=200)


class Body(BaseModel):
    """Base of every request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class SourceCreate(Body):
    """A source to register."""

    name: str = _Name
    source_type: str = Field(min_length=1, max_length=64)
    host: str = Field(min_length=1, max_length=253)
    base_url: str = Field(default="", max_length=2048)
    enabled: bool = True
    job_types: list[str] = Field(default_factory=list, max_length=64)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)


class SourceUpdate(Body):
    """Fields of a source to change; absent fields stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    source_type: str | None = Field(default=None, min_length=1, max_length=64)
    host: str | None = Field(default=None, min_length=1, max_length=253)
    base_url: str | None = Field(default=None, max_length=2048)
    enabled: bool | None = None
    job_types: list[str] | None = Field(default=None, max_length=64)
    labels: dict[str, str] | None = Field(default=None, max_length=64)
    version: int = Field(default=0, ge=0, description="Expected version (0: do not check)")


class JobSpecIn(Body):
    """One job to create."""

    key: str = Field(default="", max_length=200)
    job_type: str = Field(min_length=1, max_length=200)
    source_id: str = Field(default="", max_length=64)
    project: str = Field(default="", max_length=200)
    priority: int = Field(default=0, ge=-1000, le=1000)
    payload: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str = Field(default="", max_length=255)
    correlation_id: str = Field(default="", max_length=255)
    max_attempts: int = Field(default=0, ge=0, le=100)
    depends_on: list[str] = Field(default_factory=list, max_length=1000)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)


class RunCreate(Body):
    """A run and the DAG of its jobs."""

    name: str = Field(default="", max_length=200)
    project: str = Field(default="", max_length=200)
    source_id: str = Field(default="", max_length=64)
    correlation_id: str = Field(default="", max_length=255)
    idempotency_key: str = Field(default="", max_length=255)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    jobs: list[JobSpecIn] = Field(min_length=1, max_length=10_000)


class JobSubmit(Body):
    """One job to submit, standalone or into an existing run."""

    job: JobSpecIn
    run_id: str = Field(default="", max_length=64)


class ThrottleIn(Body):
    """A temporary refill rate for a source's rate-limit key (0 pauses it)."""

    refill_per_second: float = Field(ge=0, le=1_000_000)
    duration_s: float = Field(gt=0, le=7 * 24 * 3600, description="How long the override lasts")


class BucketConfigIn(Body):
    """Configured limits of a token bucket."""

    capacity: int = Field(gt=0, le=1_000_000_000)
    refill_per_second: float = Field(gt=0, le=1_000_000)


class QuotaCreate(Body):
    """A quota for the tenant (job_type empty) or one job type."""

    job_type: str = Field(default="", max_length=200)
    max_active: int = Field(default=0, ge=0, le=2_000_000_000)
    max_per_hour: int = Field(default=0, ge=0, le=2_000_000_000)
    burst: int = Field(default=0, ge=0, le=2_000_000_000)
    max_queued: int = Field(default=0, ge=0, le=2_000_000_000)
    paused: bool = False


class QuotaUpdate(Body):
    """Quota fields to change; absent fields stay as they are."""

    max_active: int | None = Field(default=None, ge=0, le=2_000_000_000)
    max_per_hour: int | None = Field(default=None, ge=0, le=2_000_000_000)
    burst: int | None = Field(default=None, ge=0, le=2_000_000_000)
    max_queued: int | None = Field(default=None, ge=0, le=2_000_000_000)
    paused: bool | None = None


class BulkReplayIn(Body):
    """Which pending dead-letter entries to replay (every filter is optional)."""

    error_class: str | None = Field(default=None, max_length=32)
    job_type: str | None = Field(default=None, max_length=200)
    source_id: str | None = Field(default=None, max_length=64)
    retryable: bool | None = None
    limit: int = Field(default=100, ge=1, le=500, description="At most this many entries")


class RunTemplateIn(Body):
    """The run a schedule creates at each fire time."""

    name: str = Field(default="", max_length=200, description='"{fire_time}" is replaced')
    project: str = Field(default="", max_length=200)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    jobs: list[JobSpecIn] = Field(min_length=1, max_length=10_000)


CatchUp = Literal["skip", "one", "all"]
Overlap = Literal["skip", "buffer_one", "allow"]


class ScheduleCreate(Body):
    """A cron schedule (UTC) that creates runs from a template."""

    name: str = Field(min_length=1, max_length=200)
    cron: str = Field(min_length=1, max_length=200)
    source_id: str = Field(default="", max_length=64)
    run_template: RunTemplateIn
    catch_up: CatchUp | None = None
    overlap: Overlap | None = None
    catch_up_window_s: float | None = Field(default=None, gt=0, le=366 * 24 * 3600)
    enabled: bool = True


class ScheduleUpdate(Body):
    """Schedule fields to change; absent fields stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    cron: str | None = Field(default=None, min_length=1, max_length=200)
    catch_up: CatchUp | None = None
    overlap: Overlap | None = None
    enabled: bool | None = None


class BackfillCreate(Body):
    """A past event-time range of a source to re-process in windows (one job each)."""

    source_id: str = Field(min_length=1, max_length=64)
    job_type: str = Field(min_length=1, max_length=200)
    start: datetime = Field(description="Inclusive start of the range (UTC)")
    end: datetime = Field(description="Exclusive end of the range (UTC)")
    window_size_s: float = Field(gt=0, le=366 * 24 * 3600, description="Length of each window")
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    payload: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = Field(default=False, description="Preview counts and impact only")


class PriorityIn(Body):
    """A new scheduling priority (higher is leased first)."""

    priority: int = Field(ge=-1000, le=1000)


class JobTypeIn(Body):
    """Which jobs to pause or resume: one job type, or the whole tenant when empty."""

    job_type: str = Field(default="", max_length=200)


def struct(data: dict[str, Any]) -> struct_pb2.Struct:
    """A JSON object as a protobuf ``Struct`` (400 problem if it is not representable)."""
    s = struct_pb2.Struct()
    try:
        s.update(data)
    except (ValueError, TypeError) as exc:
        raise ProblemError(400, f"payload is not representable as JSON object: {exc}") from None
    return s


def job_spec(spec: JobSpecIn) -> resources_pb2.JobSpec:
    """The ``JobSpec`` of one job of a run, a submit or a schedule's run template."""
    # The body's fields are the message's, but for the payload (a Struct) and max_attempts
    # (in the retry policy, unset when 0).
    fields = spec.model_dump(exclude={"payload", "max_attempts"})
    msg = resources_pb2.JobSpec(**fields, payload=struct(spec.payload))
    if spec.max_attempts:
        msg.retry_policy.max_attempts = spec.max_attempts
    return msg


class WebhookCreate(Body):
    """A webhook subscription (docs/webhooks.md); the answer carries its secret, once."""

    url: str = Field(min_length=1, max_length=2048)
    event_types: list[str] = Field(min_length=1, max_length=32)
    source_id: str = Field(default="", max_length=64)
    job_type: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=1000)


class WebhookUpdate(Body):
    """Fields of a subscription to change; absent fields stay as they are (an empty
    ``source_id`` or ``job_type`` removes that filter)."""

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=32)
    source_id: str | None = Field(default=None, max_length=64)
    job_type: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    enabled: bool | None = None
