"""Domain core of Stella Orchestrator (stdlib only).

Design note
-----------
This package holds the rules every service shares and nothing that does I/O:

* ``states``: the job state machine (:data:`LEGAL_TRANSITIONS`), reason codes, the event type
  each transition writes, and the derivation of a run's status from its jobs' states.
* ``retry``: capped exponential backoff with full jitter and the retry-or-dead decision.
* ``errors``: one root (:class:`OrchestratorError`) and one subclass per gRPC status; the
  status is named as a string so the core needs no grpc import.
* ``ids`` / ``digest`` / ``clock``: UUIDv7 ids, canonical JSON (RFC 8785) digests, and an
  injectable clock so tests move time instead of sleeping.
* ``paging``: page sizes, filter-bound cursor tokens and the one paged-list step.
* ``records``: immutable typed records of ledger rows, as the stores hand them to services.
* ``event_fold``: a pure fold of transition events into job state, shared by tests and
  offline audit replay.

Dependency direction: generated code → core → adapters → services; this package imports
only the standard library and itself.
"""

from orchestrator_core.clock import Clock, FrozenClock, SystemClock, ensure_utc
from orchestrator_core.digest import (
    DIGEST_RE,
    MAX_JSON_DEPTH,
    canonical_json,
    payload_digest,
    validate_digest,
)
from orchestrator_core.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    IllegalTransition,
    InvalidArgument,
    LeaseLost,
    NotFound,
    OrchestratorError,
    PermissionDenied,
    PreconditionViolation,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Violations,
)
from orchestrator_core.event_fold import JobModel, TransitionEvent, apply, fold
from orchestrator_core.ids import (
    TENANT_ID_RE,
    id_timestamp,
    new_id,
    parse_id,
    validate_tenant_id,
)
from orchestrator_core.records import JobRecord, ScheduleRecord
from orchestrator_core.resume import ResumePlan, plan_resume
from orchestrator_core.retry import (
    MAX_ATTEMPTS_LIMIT,
    RetryPolicy,
    backoff_ceiling_s,
    backoff_s,
    decide_failure,
    failure_reason,
)
from orchestrator_core.states import (
    EXPECTED_REASONS,
    LEGAL_TRANSITIONS,
    TERMINAL_JOB_STATES,
    JobState,
    Reason,
    RunState,
    check_transition,
    derive_run_state,
    event_type_for,
    is_expected_reason,
)

__all__ = [
    "DIGEST_RE",
    "EXPECTED_REASONS",
    "LEGAL_TRANSITIONS",
    "MAX_ATTEMPTS_LIMIT",
    "MAX_JSON_DEPTH",
    "TENANT_ID_RE",
    "TERMINAL_JOB_STATES",
    "Aborted",
    "AlreadyExists",
    "Clock",
    "FailedPrecondition",
    "FieldViolation",
    "FrozenClock",
    "IllegalTransition",
    "InvalidArgument",
    "JobModel",
    "JobRecord",
    "JobState",
    "LeaseLost",
    "NotFound",
    "OrchestratorError",
    "PermissionDenied",
    "PreconditionViolation",
    "Reason",
    "ResourceExhausted",
    "ResumePlan",
    "RetryPolicy",
    "RunState",
    "ScheduleRecord",
    "SystemClock",
    "TransitionEvent",
    "Unauthenticated",
    "Unavailable",
    "Violations",
    "apply",
    "backoff_ceiling_s",
    "backoff_s",
    "canonical_json",
    "check_transition",
    "decide_failure",
    "derive_run_state",
    "ensure_utc",
    "event_type_for",
    "failure_reason",
    "fold",
    "id_timestamp",
    "is_expected_reason",
    "new_id",
    "parse_id",
    "payload_digest",
    "plan_resume",
    "validate_digest",
    "validate_tenant_id",
]
