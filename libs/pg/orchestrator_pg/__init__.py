"""PostgreSQL adapter of Stella Orchestrator: the job ledger.

Design note
-----------
* ``migrations/NNNN_*.sql`` are applied in order by :func:`migrate` (locked, idempotent);
  ``schema.sql`` is the schema truth they must add up to (tests/migration checks it).
* ``queries/*.sql`` hold every query under a ``-- name:`` header; :func:`query` looks them
  up by name. No SQL is built from strings in Python.
* The event history is an outbox written by triggers in the same transaction as the state
  change it records, then NOTIFYed (``orch_events``, ``orch_jobs_ready``).
* One store per table family, plain classes over :class:`Database` (``SourceStore``,
  ``RunStore``, ``JobStore``, ``QuotaStore``, ``ScheduleStore``, ``BackfillStore``,
  ``DeadLetterStore``, ``IncidentStore``, ``ArtifactStore``, ``TenantStore``,
  ``WebhookStore``), bundled by
  :class:`Stores`; their shared transaction helpers (``Conn``, ``settle``, the one
  audit-entry writer, the one integrity-error mapper) are in ``_tx.py``.
  :class:`LeaseLedger` is the hot path (claim, complete, fail, expire), fenced by lease id.
* :class:`IdempotencyStore` keeps the gateway's ``Idempotency-Key`` answers for every
  replica; :class:`IdempotencyKeyCleaner` deletes expired ones (leader only).
"""

from orchestrator_pg._admin import create_database, database_url_for, drop_database
from orchestrator_pg._artifacts import ArtifactStore
from orchestrator_pg._audit_chain import AuditLedger, ChainLink, ExportData, ExportScope
from orchestrator_pg._backfills import (
    BackfillPlan,
    BackfillRequest,
    BackfillStore,
    split_windows,
)
from orchestrator_pg._backpressure import QUEUE_RETRY_AFTER_S, queue_limit
from orchestrator_pg._clock import CLOCK_OFFSET, DatabaseClock
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._dead_letters import DeadLetterStore
from orchestrator_pg._eventstream import EventHorizon, EventReader
from orchestrator_pg._idempotency import (
    IdempotencyKey,
    IdempotencyKeyCleaner,
    IdempotencyRecord,
    IdempotencyStore,
    StoredAnswer,
)
from orchestrator_pg._incidents import IncidentStore
from orchestrator_pg._job_insert import NewJob
from orchestrator_pg._jobs import JobSearch, JobStore, SubmittedJob
from orchestrator_pg._leadership import (
    LEADER_RETRY_S,
    LeaderLoop,
    LeaderOnlyLoop,
    Leadership,
    lead_passes,
)
from orchestrator_pg._leasing import (
    ARTIFACT_CONFLICT,
    DEFAULT_LEASE_TTL_S,
    LEASE_LOST,
    WORKER_CRASH,
    Artifact,
    Completion,
    Failure,
    Heartbeat,
    LeaseLedger,
    LeaseRef,
    Outcome,
    Passes,
    ProgressUpdate,
)
from orchestrator_pg._listen import ReadyListener, WakeFn
from orchestrator_pg._maintenance import EventPartitionMaintainer
from orchestrator_pg._metrics import ChainLag, MetricsReader, QueueSnapshot
from orchestrator_pg._migrate import (
    Migration,
    MigrationError,
    load_migrations,
    migrate,
    schema_sql,
)
from orchestrator_pg._overview import OverviewStore
from orchestrator_pg._queries import parse_queries, queries, query
from orchestrator_pg._quotas import QUOTA_MUTABLE_FIELDS, QuotaFields, QuotaStore
from orchestrator_pg._runs import CreatedRun, NewRun, ResumedRun, RunStore
from orchestrator_pg._schedules import SCHEDULE_MUTABLE_FIELDS, ScheduleFields, ScheduleStore
from orchestrator_pg._snapshots import LeaderSnapshot
from orchestrator_pg._sources import SourceFields, SourceStore
from orchestrator_pg._stores import Stores
from orchestrator_pg._tenants import TenantStore
from orchestrator_pg._throttles import ThrottleStore
from orchestrator_pg._tx import (
    Conn,
    audit_entry_write,
    integrity_error,
    integrity_mapped,
    settle,
    write_audited,
)
from orchestrator_pg._webhooks import WebhookFields, WebhookStore

__all__ = [
    "ARTIFACT_CONFLICT",
    "CLOCK_OFFSET",
    "DEFAULT_LEASE_TTL_S",
    "LEADER_RETRY_S",
    "LEASE_LOST",
    "QUEUE_RETRY_AFTER_S",
    "QUOTA_MUTABLE_FIELDS",
    "SCHEDULE_MUTABLE_FIELDS",
    "WORKER_CRASH",
    "Artifact",
    "ArtifactStore",
    "AuditLedger",
    "BackfillPlan",
    "BackfillRequest",
    "BackfillStore",
    "ChainLag",
    "ChainLink",
    "Completion",
    "Conn",
    "CreatedRun",
    "Database",
    "DatabaseClock",
    "DeadLetterStore",
    "EventHorizon",
    "EventPartitionMaintainer",
    "EventReader",
    "ExportData",
    "ExportScope",
    "Failure",
    "Heartbeat",
    "IdempotencyKey",
    "IdempotencyKeyCleaner",
    "IdempotencyRecord",
    "IdempotencyStore",
    "IncidentStore",
    "JobSearch",
    "JobStore",
    "LeaderLoop",
    "LeaderOnlyLoop",
    "LeaderSnapshot",
    "Leadership",
    "LeaseLedger",
    "LeaseRef",
    "MetricsReader",
    "Migration",
    "MigrationError",
    "NewJob",
    "NewRun",
    "Outcome",
    "OverviewStore",
    "Passes",
    "ProgressUpdate",
    "QueueSnapshot",
    "QuotaFields",
    "QuotaStore",
    "ReadyListener",
    "ResumedRun",
    "Row",
    "RunStore",
    "ScheduleFields",
    "ScheduleStore",
    "SourceFields",
    "SourceStore",
    "StoredAnswer",
    "Stores",
    "SubmittedJob",
    "TenantStore",
    "ThrottleStore",
    "TxContext",
    "WakeFn",
    "WebhookFields",
    "WebhookStore",
    "audit_entry_write",
    "create_database",
    "database_url_for",
    "drop_database",
    "integrity_error",
    "integrity_mapped",
    "lead_passes",
    "load_migrations",
    "migrate",
    "parse_queries",
    "queries",
    "query",
    "queue_limit",
    "schema_sql",
    "settle",
    "split_windows",
    "write_audited",
]
