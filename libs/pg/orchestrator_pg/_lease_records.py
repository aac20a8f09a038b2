"""The records of the hot path: what the leases service hands to :class:`LeaseLedger`
(artifacts, completions, heartbeats, progress, failures) and what it gets back (outcomes,
deferrals, limited claims). Plain frozen dataclasses, so unit tests build them without a
database.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator_pg._db import Row

DEFAULT_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class LeaseRef:
    """One lease of one job: what every fenced write names (job id and lease id)."""

    job_id: uuid.UUID
    lease_id: uuid.UUID


@dataclass(frozen=True)
class Artifact(LeaseRef):
    """An artifact a worker recorded for a leased job (content addressed by ``digest``)."""

    name: str
    digest: str
    size_bytes: int = 0
    media_type: str = DEFAULT_MEDIA_TYPE
    uri: str = ""


@dataclass(frozen=True)
class Completion(LeaseRef):
    """A worker's result for one lease, with artifacts recorded in the same transaction."""

    result: dict[str, Any] = field(default_factory=dict)
    result_digest: str = ""
    artifacts: tuple[Artifact, ...] = ()


@dataclass(frozen=True)
class Heartbeat(LeaseRef):
    """A lease extension; ``percent``/``message`` are recorded when ``has_progress``."""

    has_progress: bool = False
    percent: float = 0.0
    message: str = ""


@dataclass(frozen=True)
class ProgressUpdate(LeaseRef):
    """Progress of a leased job, without extending its lease."""

    percent: float = 0.0
    message: str = ""


@dataclass(frozen=True)
class Failure(LeaseRef):
    """A worker's failure report for one lease."""

    error_class: str
    message: str = ""
    retryable: bool = True
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Outcome(LeaseRef):
    """What happened to one write on a lease: ``ok`` or why not (``lease_lost``).

    ``lease_expires_at`` is the extended expiry after a heartbeat; ``cancel_reason`` is set
    (e.g. ``user_canceled``) when the write found the job canceled under this very lease, so
    its holder should stop. ``repeated`` marks a write that was already applied (a completion
    resent with the same result): accepted, but nothing changed this time, so it is not
    counted again. A completion this write applied also carries the job's type and its run
    time (``run_s``: lease to finish, database clock) for the run-duration histogram; they
    are observations, not part of the outcome's identity.
    """

    ok: bool
    error_reason: str = ""
    new_state: str = ""
    lease_expires_at: datetime | None = None
    cancel_reason: str = ""
    repeated: bool = False
    job_type: str = field(default="", compare=False)
    run_s: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Deferral:
    """A claim candidate that may not go now: it stays ready with ``not_before`` moved to
    when it can (no lease, no attempt, no event). ``reason``: ``blackout`` or what the
    admission callback said (e.g. ``tokens``, ``paused``, ``circuit_open``)."""

    job_id: uuid.UUID
    not_before: datetime
    reason: str


@dataclass(frozen=True)
class LimitedClaim:
    """What :meth:`LeaseLedger.job_claim_admitted` did.

    Attributes:
        rows: the leased rows (assignment columns, ``slot`` and ``host``), in slot order.
        deferred: candidates that may not go now (blackout, denied tokens).
        now: the claim's time.
        quota_wake_at: when the next hourly quota token comes for a quota that has none
            now (None: no quota is waiting for tokens).
        cap_full: some quota or source was at its ``max_active``: a lease ending may make
            room, so the caller should claim again when one ends.
        spent: leased rows per ``(tenant, host)`` taken from the caller's allowance.
    """

    rows: list[Row]
    deferred: list[Deferral]
    now: datetime
    quota_wake_at: datetime | None = None
    cap_full: bool = False
    spent: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def earliest_deferral(self) -> datetime | None:
        """When the first deferred candidate becomes claimable again (None: none)."""
        return min((d.not_before for d in self.deferred), default=None)

    @property
    def wake_at(self) -> datetime | None:
        """When something held back now may go: the first deferral or quota token."""
        times = [t for t in (self.earliest_deferral, self.quota_wake_at) if t is not None]
        return min(times, default=None)


# Entries kept per Passes: beyond it the least-served are forgotten (they restart at vtime).
MAX_PASSES = 10_000


@dataclass
class Passes:
    """Weighted fair share across claims (stride scheduling), kept by one claimer.

    Each tenant's pass is the share of slots it has been served: a claim orders tenants and
    their candidates by ``pass + rank / weight`` (``job_claim_admitted``), and each lease
    advances its tenant's pass by ``1 / weight``, so over many claims of any size a weight-3
    tenant gets three leases for every one of a weight-1 tenant. ``vtime`` is where a tenant
    not served lately starts (the least pass among those served last), so an idle tenant
    cannot bank a burst.

    Attributes:
        of: pass per tenant served lately.
        vtime: the pass of any other tenant.
    """

    of: dict[str, float] = field(default_factory=dict)
    vtime: float = 0.0

    def served(self, rows: Sequence[Row], weights: Mapping[str, int]) -> None:
        """Advances the passes of the tenants ``rows`` were leased to."""
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["tenant"]] = counts.get(row["tenant"], 0) + 1
        if not counts:
            return
        start = {t: max(self.of.get(t, self.vtime), self.vtime) for t in counts}
        for tenant, n in counts.items():
            self.of[tenant] = start[tenant] + n / max(1, int(weights.get(tenant, 1)))
        self.vtime = max(self.vtime, min(start.values()))
        # A pass at or below vtime says nothing more than the default.
        for tenant in [t for t, p in self.of.items() if p <= self.vtime]:
            del self.of[tenant]
        if len(self.of) > MAX_PASSES:
            for tenant, _ in sorted(self.of.items(), key=lambda kv: kv[1])[:-MAX_PASSES]:
                del self.of[tenant]
