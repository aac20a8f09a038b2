"""Domain errors: one root, one subclass per gRPC status.

The core stays free of grpc: each class names its status in the class attribute
``grpc_status`` (the ``grpc.StatusCode`` member name, e.g. ``"NOT_FOUND"``) and exactly one
interceptor in ``orchestrator_grpckit`` turns it into a status with ``google.rpc`` details:
``ErrorInfo{reason, metadata}`` always, plus ``BadRequest`` (``violations`` of
:class:`InvalidArgument`), ``PreconditionFailure`` (``violations`` of
:class:`FailedPrecondition`), ``ResourceInfo`` (:class:`NotFound`) or ``RetryInfo``
(:class:`ResourceExhausted`) where the error carries them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # states imports this module; the annotation is all we need here.
    from orchestrator_core.states import JobState

__all__ = [
    "Aborted",
    "AlreadyExists",
    "FailedPrecondition",
    "FieldViolation",
    "IllegalTransition",
    "InvalidArgument",
    "LeaseLost",
    "NotFound",
    "OrchestratorError",
    "PermissionDenied",
    "PreconditionViolation",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Violations",
]

_NON_WORD = re.compile(r"[^A-Za-z0-9]+")


def _upper_snake(value: str) -> str:
    # "idempotency key" / "job-type" / "Run" -> IDEMPOTENCY_KEY / JOB_TYPE / RUN
    return _NON_WORD.sub("_", value).strip("_").upper()


class OrchestratorError(Exception):
    """Root of every error the orchestrator raises on purpose.

    Args:
        message: Human-readable, precise description; ``str(error)`` returns it.
        reason: UPPER_SNAKE machine-readable code (``ErrorInfo.reason``).
        metadata: Extra string key/values for ``ErrorInfo.metadata``.

    Attributes:
        grpc_status: Name of the gRPC status code this error maps to.
    """

    grpc_status: ClassVar[str] = "UNKNOWN"
    default_reason: ClassVar[str] = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason if reason is not None else self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


class NotFound(OrchestratorError):
    """A named resource does not exist (or is not visible to the caller's tenant).

    Args:
        resource_type: Kind of resource, e.g. ``"job"``; gives reason ``JOB_NOT_FOUND``.
        resource_name: Identifier of the missing resource.
        message: Overrides the default ``"job '<name>' not found"``.
    """

    grpc_status = "NOT_FOUND"
    default_reason = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_name: str, message: str | None = None) -> None:
        super().__init__(
            message if message is not None else f"{resource_type} '{resource_name}' not found",
            reason=f"{_upper_snake(resource_type)}_NOT_FOUND",
            metadata={"resource_type": resource_type, "resource_name": resource_name},
        )
        self.resource_type = resource_type
        self.resource_name = resource_name


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field (``google.rpc.BadRequest.FieldViolation``).

    Attributes:
        field: Dotted path of the field, e.g. ``retry_policy.max_attempts``.
        description: What is wrong with it and what is expected.
    """

    field: str
    description: str


class InvalidArgument(OrchestratorError):
    """The request is malformed whatever the state of the system.

    Args:
        message: Summary of the problem.
        violations: The offending fields, one entry each.
    """

    grpc_status = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, violations: Sequence[FieldViolation] = ()) -> None:
        super().__init__(message)
        self.violations: tuple[FieldViolation, ...] = tuple(violations)


class Violations:
    """Collects field violations so a request reports all of them at once;
    :meth:`raise_if_any` raises them together as one :class:`InvalidArgument`."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def merge(self, error: InvalidArgument, prefix: str = "") -> None:
        """Adds the violations of ``error``, their fields prefixed (``"jobs[3]."``)."""
        for v in error.violations:
            self.items.append(FieldViolation(prefix + v.field, v.description))

    def raise_if_any(self, message: str) -> None:
        """Raises InvalidArgument (``message`` and the first five violations) if any."""
        if self.items:
            detail = "; ".join(f"{v.field}: {v.description}" for v in self.items[:5])
            more = f" (+{len(self.items) - 5} more)" if len(self.items) > 5 else ""
            raise InvalidArgument(f"{message}: {detail}{more}", self.items)


@dataclass(frozen=True, slots=True)
class PreconditionViolation:
    """One failed precondition (``google.rpc.PreconditionFailure.Violation``).

    Attributes:
        type: Kind of precondition, e.g. ``"JOB_STATE"``.
        subject: What failed it, e.g. ``"jobs/0190..."``.
        description: How it failed.
    """

    type: str
    subject: str
    description: str


class FailedPrecondition(OrchestratorError):
    """The request is well formed but the system is not in a state that allows it.

    Args:
        message: Precise description of the refused operation.
        reason: UPPER_SNAKE reason code.
        violations: The failed preconditions.
        metadata: Extra ``ErrorInfo`` metadata.
    """

    grpc_status = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"

    def __init__(
        self,
        message: str,
        reason: str = "FAILED_PRECONDITION",
        violations: Sequence[PreconditionViolation] = (),
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations: tuple[PreconditionViolation, ...] = tuple(violations)


class IllegalTransition(FailedPrecondition):
    """A job state change that the state machine does not allow.

    Args:
        current: State the job is in (``None``: the job does not exist yet).
        target: State that was asked for.
        job_id: Id of the job, when known.
    """

    def __init__(self, current: JobState | None, target: JobState, job_id: str = "") -> None:
        who = f"job {job_id}" if job_id else "a job"
        if current is None:
            message = f"{who} cannot be created in state {target}"
        else:
            message = f"{who} cannot go from {current} to {target}"
        metadata = {"current": "" if current is None else str(current), "target": str(target)}
        if job_id:
            metadata["job_id"] = job_id
        super().__init__(
            message,
            reason="ILLEGAL_TRANSITION",
            violations=[
                PreconditionViolation(
                    type="JOB_STATE",
                    subject=f"jobs/{job_id}" if job_id else "jobs",
                    description=message,
                )
            ],
            metadata=metadata,
        )
        self.current = current
        self.target = target
        self.job_id = job_id


class LeaseLost(FailedPrecondition):
    """A write presented a lease that is no longer the job's current lease.

    The write changed nothing (fencing: no double completion).

    Args:
        job_id: Id of the job.
        lease_id: The stale lease id the caller presented.
        message: Overrides the default message.
    """

    def __init__(self, job_id: str, lease_id: str, message: str | None = None) -> None:
        text = (
            message
            if message is not None
            else f"lease {lease_id} is no longer the current lease of job {job_id}"
        )
        super().__init__(
            text,
            reason="LEASE_LOST",
            violations=[
                PreconditionViolation(type="LEASE", subject=f"jobs/{job_id}", description=text)
            ],
            metadata={"job_id": job_id, "lease_id": lease_id},
        )
        self.job_id = job_id
        self.lease_id = lease_id


class AlreadyExists(OrchestratorError):
    """The resource the caller tried to create exists already."""

    grpc_status = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class Aborted(OrchestratorError):
    """A concurrency conflict (lost a race, serialization failure); the caller may retry."""

    grpc_status = "ABORTED"
    default_reason = "ABORTED"


class PermissionDenied(OrchestratorError):
    """The caller is known but may not do this.

    Args:
        message: What was refused.
        required_scope: The scope that would have allowed it, e.g. ``"orch:operate"``.
    """

    grpc_status = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"

    def __init__(self, message: str, required_scope: str | None = None) -> None:
        super().__init__(
            message,
            metadata={"required_scope": required_scope} if required_scope else None,
        )
        self.required_scope = required_scope


class Unauthenticated(OrchestratorError):
    """No valid credentials (missing, malformed, expired or wrongly signed token)."""

    grpc_status = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class ResourceExhausted(OrchestratorError):
    """A quota or rate limit is full; the caller should come back later.

    Args:
        message: Which limit is full.
        retry_after_s: When to retry, in seconds (``RetryInfo.retry_delay``), if known.
        reason: UPPER_SNAKE reason code, e.g. ``"QUOTA_EXCEEDED"``.
    """

    grpc_status = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        retry_after_s: float | None = None,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if retry_after_s is not None and retry_after_s < 0:
            raise ValueError(f"retry_after_s must be >= 0, got {retry_after_s}")
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after_s = retry_after_s


class Unavailable(OrchestratorError):
    """A dependency (database, Redis) is unreachable; the call may be retried."""

    grpc_status = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"
