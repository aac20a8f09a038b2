"""The incident pass: failures from the event history in, incidents opened, grown, resolved.

Where it runs, and why there. Incidents are decided by a leader-only loop
(:attr:`LeaderLoop.INCIDENTS`, scheduler service) that reads failed attempts from the event
outbox after a cursor, not in the transaction that records each failure:

* failures are written by every leases replica's completer (batched) and watchdog; updating
  a shared per-cluster row there would serialise concurrent flushes on hot rows exactly when
  failures storm, and add lock waits (and deadlock risk) to the hot path;
* resolution is driven by time (a quiet period), so a loop is needed anyway;
* one reader in seq order makes the result deterministic: one incident per cluster however
  many replicas run, recomputed the same way after a failover.

It reads only up to the :class:`~orchestrator_pg.EventHorizon` (every event at or below it is
committed or never will be), so a late commit is never skipped; it wakes when the horizon
moves (passes at least :data:`PASS_MIN_INTERVAL_S` apart) and about once a second anyway
(resolution). Each pass is one transaction that locks the cursor first
(``IncidentStore.incident_pass``): a deposed leader still mid-pass
and the new leader serialise on that row, and the second re-reads the cursor, so no failure
is counted twice. The rules (threshold, window, quiet period, samples) are the pure
:func:`orchestrator_core.incidents.fold_failures`. A cursor that does not exist yet starts
at the horizon: incidents are about what fails from now on, not the history.

The open incidents are published as ``orch_incidents_open{tenant,error_class}`` by the
leader after each pass (the other replicas export no series, so ``sum`` is exact).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orchestrator_core import Clock, SystemClock, new_id
from orchestrator_core.incidents import (
    DEFAULT_POLICY,
    FailureRecord,
    IncidentFold,
    IncidentPolicy,
    fold_failures,
)
from orchestrator_pg import (
    Conn,
    EventHorizon,
    IncidentStore,
    LeaderLoop,
    LeaderOnlyLoop,
)

BATCH_FAILURES = 5000
# At most four passes a second: on a busy outbox the horizon moves all the time, and a pass
# per movement would spin; a quarter second batches failures at no cost to an incident.
PASS_MIN_INTERVAL_S = 0.25
POLL_MIN_S = 0.5
POLL_MAX_S = 1.0

_log = logging.getLogger("orchestrator_scheduler.incidents")


class _OpenIncidents(Collector):
    """``orch_incidents_open`` from the publishing watchers of the process (one in a
    service; tests run several)."""

    def __init__(self) -> None:
        self.published: dict[int, dict[tuple[str, str], int]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "orch_incidents_open",
            "Open incidents by tenant and error class (the incident leader's count).",
            labels=("tenant", "error_class"),
        )
        for counts in list(self.published.values()):
            for (tenant, error_class), n in counts.items():
                family.add_metric((tenant, error_class), n)
        yield family


_COLLECTOR = _OpenIncidents()
REGISTRY.register(_COLLECTOR)


class IncidentWatcher(LeaderOnlyLoop):
    """Opens, grows and resolves incidents from failures (leader only) until cancelled.

    Args:
        store: the incident store.
        horizon: the settled event seq of this process (started by the service).
        conninfo: database URL (the leader lock's dedicated connection).
        clock: the injected clock (resolution, cursor times).
        policy: the deployment's default policy (tenants may override it).
        lock_key: another advisory lock key (tests that must not contend with a stack).
    """

    def __init__(
        self,
        store: IncidentStore,
        horizon: EventHorizon,
        conninfo: str,
        *,
        clock: Clock | None = None,
        policy: IncidentPolicy = DEFAULT_POLICY,
        lock_key: int | None = None,
    ) -> None:
        super().__init__(conninfo, LeaderLoop.INCIDENTS, lock_key=lock_key)
        self.store = store
        self.horizon = horizon
        self.clock = clock or SystemClock()
        self.policy = policy
        self.cursor = 0
        self.published_at = 0.0

    async def run_forever(self) -> None:
        """Waits for leadership, then runs passes while it lasts, until cancelled."""

        async def run_pass() -> bool:
            await self.run_pass()
            return False

        async def wait() -> None:
            await asyncio.sleep(PASS_MIN_INTERVAL_S)
            await self.horizon.wait_beyond(self.cursor, self.rng.uniform(POLL_MIN_S, POLL_MAX_S))

        await self.lead(run_pass, wait, on_not_leading=self._withdraw)

    async def run_pass(self) -> IncidentFold | None:
        """Reads the settled failures after the cursor (in batches), applies them, resolves
        quiet incidents and publishes the gauge. Returns the last batch's fold (None when
        the horizon is not known yet)."""
        upto = self.horizon.seq
        if upto < 0:
            return None
        decided: IncidentFold | None = None
        while True:
            decided, caught_up = await self._batch(upto)
            if caught_up:
                break
        self.passes += 1
        await self._publish()
        return decided

    async def _batch(self, upto: int) -> tuple[IncidentFold, bool]:
        now = self.clock.now()
        async with self.store.incident_pass(now) as (conn, stored):
            cursor = upto if stored is None else stored
            failures: list[FailureRecord] = []
            if cursor < upto:
                failures = await self.store.incident_failures_after(
                    conn, cursor, upto, BATCH_FAILURES
                )
            # a short batch reached `upto`: the rest of the range holds no failures
            caught_up = len(failures) < BATCH_FAILURES
            next_cursor = max(cursor, upto) if caught_up else failures[-1].seq
            decided = IncidentFold()
            if failures:
                decided = await self._apply(conn, failures)
            if caught_up:
                # only once every failure up to now is counted may silence resolve anything
                await self.store.incident_resolve_quiet(conn, now, self.policy)
            await self.store.incident_cursor_set(conn, next_cursor, now)
        self.cursor = next_cursor
        for incident in decided.opened:
            _log.info(
                "incident %s opened: %d %s failures of %s",
                incident.id,
                incident.failure_count,
                incident.key.error_class,
                incident.key.job_type,
                extra={"tenant": incident.key.tenant, "incident_id": str(incident.id)},
            )
        return decided, caught_up

    async def _apply(self, conn: Conn, failures: list[FailureRecord]) -> IncidentFold:
        """Folds a batch into the stored state of its tenants and writes the outcome."""
        tenants = sorted({f.key.tenant for f in failures})
        incidents, windows, overrides = await self.store.incident_state_of_tenants(conn, tenants)
        policies = {tenant: self.policy.override(*values) for tenant, values in overrides.items()}
        decided = fold_failures(
            failures,
            incidents,
            windows,
            lambda tenant: policies.get(tenant, self.policy),
            lambda: uuid.UUID(new_id(self.clock)),
        )
        await self.store.incident_write(
            conn,
            tenants=tenants,
            opened=decided.opened,
            changed=decided.changed,
            windows={**windows, **decided.windows},
        )
        return decided

    async def _publish(self) -> None:
        try:
            counts = await self.store.incident_open_counts()
        except Exception:  # a metric must never stop the pass
            _log.exception("counting open incidents failed")
            self._withdraw()
            return
        _COLLECTOR.published[id(self)] = counts
        self.published_at = time.time()

    def _withdraw(self) -> None:
        _COLLECTOR.published.pop(id(self), None)
