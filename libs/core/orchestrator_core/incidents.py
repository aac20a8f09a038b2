"""Incidents: when failures of one cluster open, grow and resolve an incident (pure, no I/O).

A *failure* is one failed attempt of a job (a ``job.retrying`` or ``job.dead`` event) whose
error class is not in :data:`IGNORED_ERROR_CLASSES`: an upstream 429 is throttling (the job did
not fail; the bucket learns from it and a throttle record shows it). Failures cluster by
:class:`ClusterKey` — {tenant, job type, source, error class}.

:func:`fold_failures` applies failures, in event order, to the clusters' state:

* a cluster without an open incident keeps its recent failures; when ``threshold`` of them
  lie within ``window`` of the newest, an incident opens holding them (count, first seen,
  samples) and the window empties;
* an open incident counts every further failure, keeps the newest :data:`MAX_SAMPLES`
  distinct job ids (most recent first) and its last-seen time;
* an incident whose cluster stayed quiet for ``quiet`` resolves at ``last seen + quiet``:
  here when the next failure comes after the gap (a pass that lagged), otherwise by the
  storage's periodic resolution at the clock's now (the same rule in SQL).

Defaults: :data:`DEFAULT_POLICY` (5 failures within 5 minutes, resolved after 10 quiet
minutes), overridden per deployment (``ORCH_INCIDENT_*``) and per tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

__all__ = [
    "DEFAULT_POLICY",
    "FAILURE_EVENT_TYPES",
    "IGNORED_ERROR_CLASSES",
    "MAX_SAMPLES",
    "ClusterKey",
    "FailureRecord",
    "IncidentFold",
    "IncidentPolicy",
    "IncidentRecord",
    "fold_failures",
]

FAILURE_EVENT_TYPES = ("job.retrying", "job.dead")
IGNORED_ERROR_CLASSES = ("http_429",)
MAX_SAMPLES = 10
MAX_THRESHOLD = 10_000


@dataclass(frozen=True, slots=True)
class ClusterKey:
    """What failures of one incident share."""

    tenant: str
    job_type: str
    source_id: uuid.UUID | None
    error_class: str


@dataclass(frozen=True, slots=True)
class IncidentPolicy:
    """When a cluster opens an incident and when the incident resolves.

    Attributes:
        threshold: failures within ``window`` that open an incident (1..10000).
        window: how close together those failures must be.
        quiet: time without a failure after which an open incident resolves.
    """

    threshold: int = 5
    window: timedelta = timedelta(minutes=5)
    quiet: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= MAX_THRESHOLD:
            raise ValueError(f"threshold must be 1..{MAX_THRESHOLD}, got {self.threshold}")
        if self.window <= timedelta(0) or self.quiet <= timedelta(0):
            raise ValueError("window and quiet must be positive")

    def override(
        self, threshold: int | None, window_s: int | None, quiet_s: int | None
    ) -> IncidentPolicy:
        """This policy with a tenant's overrides (None keeps the default)."""
        return IncidentPolicy(
            threshold=self.threshold if threshold is None else threshold,
            window=self.window if window_s is None else timedelta(seconds=window_s),
            quiet=self.quiet if quiet_s is None else timedelta(seconds=quiet_s),
        )


DEFAULT_POLICY = IncidentPolicy()


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """One failed attempt, as read from the event history."""

    seq: int
    key: ClusterKey
    job_id: uuid.UUID
    at: datetime


@dataclass(slots=True)
class IncidentRecord:
    """An incident as the fold sees it (``new``: not stored yet)."""

    id: uuid.UUID
    key: ClusterKey
    failure_count: int
    sample_job_ids: list[uuid.UUID]
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None = None
    new: bool = False

    def add(self, failure: FailureRecord) -> None:
        self.failure_count += 1
        self.last_seen_at = max(self.last_seen_at, failure.at)
        self.sample_job_ids = _samples([failure.job_id], self.sample_job_ids)


@dataclass
class IncidentFold:
    """What a batch of failures changes.

    Attributes:
        opened: incidents to insert (some may already be resolved by a later gap).
        changed: stored incidents whose count, samples or state changed.
        windows: the recent failures of every cluster the batch touched and that has no
            open incident (the full new content for those clusters).
    """

    opened: list[IncidentRecord] = field(default_factory=list)
    changed: list[IncidentRecord] = field(default_factory=list)
    windows: dict[ClusterKey, list[FailureRecord]] = field(default_factory=dict)


def _samples(newest: Iterable[uuid.UUID], older: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    out: list[uuid.UUID] = []
    for job_id in (*newest, *older):
        if job_id not in out:
            out.append(job_id)
        if len(out) == MAX_SAMPLES:
            break
    return out


def fold_failures(
    failures: Iterable[FailureRecord],
    open_incidents: Mapping[ClusterKey, IncidentRecord],
    windows: Mapping[ClusterKey, list[FailureRecord]],
    policy_of: Callable[[str], IncidentPolicy],
    new_id: Callable[[], uuid.UUID],
) -> IncidentFold:
    """Applies ``failures`` (in seq order) to the open incidents and windows of their
    clusters; the inputs are not modified.

    Args:
        failures: the batch, in seq order.
        open_incidents: the stored open incident of each cluster that has one.
        windows: the stored recent failures of clusters without an open incident.
        policy_of: the policy of a tenant.
        new_id: a fresh incident id.
    """
    result = IncidentFold()
    # copies (with their own sample lists): the inputs stay as they were
    current = {
        key: replace(incident, sample_job_ids=list(incident.sample_job_ids))
        for key, incident in open_incidents.items()
    }
    pending = {key: list(items) for key, items in windows.items()}
    touched: set[ClusterKey] = set()
    changed: dict[uuid.UUID, IncidentRecord] = {}
    for failure in failures:
        key = failure.key
        policy = policy_of(key.tenant)
        touched.add(key)
        incident = current.get(key)
        if incident is not None and failure.at - incident.last_seen_at >= policy.quiet:
            incident.resolved_at = incident.last_seen_at + policy.quiet
            if not incident.new:
                changed[incident.id] = incident
            del current[key]
            incident = None
        if incident is not None:
            incident.add(failure)
            if not incident.new:
                changed[incident.id] = incident
            continue
        recent = [f for f in pending.get(key, []) if failure.at - f.at < policy.window]
        recent.append(failure)
        if len(recent) >= policy.threshold:
            opened = IncidentRecord(
                id=new_id(),
                key=key,
                failure_count=len(recent),
                sample_job_ids=_samples((f.job_id for f in reversed(recent)), ()),
                first_seen_at=min(f.at for f in recent),
                last_seen_at=max(f.at for f in recent),
                new=True,
            )
            result.opened.append(opened)
            current[key] = opened
            recent = []
        # fewer than the threshold are ever kept: the window's size is bounded
        pending[key] = recent[-(policy.threshold - 1) :] if policy.threshold > 1 else []
    result.changed = list(changed.values())
    result.windows = {key: [] if key in current else pending[key] for key in touched}
    return result
