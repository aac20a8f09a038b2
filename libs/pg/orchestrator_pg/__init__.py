"""PostgreSQL adapter of Stella Orchestrator: the job ledger.

Design note
-----------
* ``migrations/NNNN_*.sql`` are applied in order by :func:`migrate` (locked, idempotent);
  ``schema.sql`` is the schema truth they must add up to (tests/migration checks it).
* ``queries/*.sql`` hold every query under a ``-- name:`` header; :func:`query` looks them
  up by name. No SQL is built from strings in Python.
* The event history is an outbox written by triggers in the same transaction as the state
  change it records, then NOTIFYed (``orch_events``, ``orch_jobs_ready``).
* :class:`IdempotencyStore` keeps the gateway's ``Idempotency-Key`` answers for every
  replica; :class:`IdempotencyKeyCleaner` deletes expired ones (leader only).
* :class:`Ledger` holds the storage operations of sources, runs, jobs and the DAG;
  :class:`LeaseLedger` the hot path (claim, complete, fail, expire), fenced by lease id.
"""

from orchestrator_pg._admin import create_database, database_url_for, drop_database
from orchestrator_pg._audit_chain import AuditLedger, ChainLink, ExportData, ExportScope
from orchestrator_pg._backfills import (
    BackfillLedger,
    BackfillPlan,
    BackfillRequest,
    split_windows,
)
from orchestrator_pg._backpressure import QUEUE_RETRY_AFTER_S, queue_limit
from orchestrator_pg._clock import CLOCK_OFFSET, DatabaseClock
from orchestrator_pg._controls import ControlLedger
from orchestrator_pg._db import Database, Row, TxContext
from orchestrator_pg._eventstream import EventHorizon, EventReader
from orchestrator_pg._idempotency import (
    IdempotencyKey,
    IdempotencyKeyCleaner,
    IdempotencyRecord,
    IdempotencyStore,
    StoredAnswer,
)
from orchestrator_pg._leadership import LeaderLoop, Leadership
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
    Outcome,
    ProgressUpdate,
)
from orchestrator_pg._ledger import (
    CreatedRun,
    Ledger,
    NewJob,
    NewRun,
    SourceFields,
    SubmittedJob,
)
from orchestrator_pg._listen import ReadyListener, WakeFn
from orchestrator_pg._maintenance import EventPartitionMaintainer
from orchestrator_pg._migrate import (
    Migration,
    MigrationError,
    load_migrations,
    migrate,
    schema_sql,
)
from orchestrator_pg._operations import OperationsLedger
from orchestrator_pg._queries import parse_queries, queries, query
from orchestrator_pg._quotas import QUOTA_MUTABLE_FIELDS, QuotaFields, QuotaLedger
from orchestrator_pg._schedules import SCHEDULE_MUTABLE_FIELDS, ScheduleFields, ScheduleLedger
from orchestrator_pg._throttles import ThrottleStore

__all__ = [
    "ARTIFACT_CONFLICT",
    "CLOCK_OFFSET",
    "DEFAULT_LEASE_TTL_S",
    "LEASE_LOST",
    "QUEUE_RETRY_AFTER_S",
    "QUOTA_MUTABLE_FIELDS",
    "SCHEDULE_MUTABLE_FIELDS",
    "WORKER_CRASH",
    "Artifact",
    "AuditLedger",
    "BackfillLedger",
    "BackfillPlan",
    "BackfillRequest",
    "ChainLink",
    "Completion",
    "ControlLedger",
    "CreatedRun",
    "Database",
    "DatabaseClock",
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
    "LeaderLoop",
    "Leadership",
    "LeaseLedger",
    "Ledger",
    "Migration",
    "MigrationError",
    "NewJob",
    "NewRun",
    "OperationsLedger",
    "Outcome",
    "ProgressUpdate",
    "QuotaFields",
    "QuotaLedger",
    "ReadyListener",
    "Row",
    "ScheduleFields",
    "ScheduleLedger",
    "SourceFields",
    "StoredAnswer",
    "SubmittedJob",
    "ThrottleStore",
    "TxContext",
    "WakeFn",
    "create_database",
    "database_url_for",
    "drop_database",
    "load_migrations",
    "migrate",
    "parse_queries",
    "queries",
    "query",
    "queue_limit",
    "schema_sql",
    "split_windows",
]
