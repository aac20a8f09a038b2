"""The leases service: the worker hot path (claim, heartbeat, complete, fail, artifacts).

Design note
-----------
``__main__`` is the composition root; :func:`build_service` wires one process:

* ``_servicer``: LeaseService. ``Work`` (bidirectional stream) hands each stream to a
  ``_session.WorkSession``; the unary methods validate, then call the completer or the ledger.
* ``_dispatcher``: one claim statement per batch for all waiting sessions with the same
  identity and job types (``FOR UPDATE SKIP LOCKED``, fair round-robin across tenants),
  never more than their free slots; wakes on NOTIFY, a full claim, or a jittered 1-2 s poll.
* the process's one ``LISTEN orch_jobs_ready`` connection is ``orchestrator_pg.ReadyListener``.
* ``_completer``: heartbeats, progress, artifacts, completions and failures of every session
  batched into one statement per kind per flush, with a bounded backlog.
* ``_watchdog``: leader-only (advisory lock) expiry of overdue leases.
* ``_queue_metrics``: leader-only queue-depth and dead-letter gauges, one snapshot statement
  per interval.
* ``_convert``: wire ↔ ledger records and validation; ``_settings``: the ``ORCH_*`` tunables;
  ``_metrics``: Prometheus metrics.

Every write on a lease is fenced by its lease id in SQL (``orchestrator_pg.LeaseLedger``):
a stale writer gets ``lease_lost`` and changes nothing. Assignments carry the job's own
idempotency key, or ``orch-{job_id}`` when it has none.
"""

from orchestrator_leases._app import LeasesApp, build_app, build_service
from orchestrator_leases._servicer import METHOD_SCOPES, SERVICE_NAME, LeaseServicer
from orchestrator_leases._settings import LeaseSettings

__all__ = [
    "METHOD_SCOPES",
    "SERVICE_NAME",
    "LeaseServicer",
    "LeaseSettings",
    "LeasesApp",
    "build_app",
    "build_service",
]
