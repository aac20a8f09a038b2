"""Error hierarchy: one root, one gRPC status per class, details carried as attributes."""

from __future__ import annotations

import pytest

from orchestrator_core import (
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
)


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (NotFound("job", "j1"), "NOT_FOUND", "JOB_NOT_FOUND"),
        (InvalidArgument("bad"), "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
        (FailedPrecondition("no"), "FAILED_PRECONDITION", "FAILED_PRECONDITION"),
        (LeaseLost("j1", "l1"), "FAILED_PRECONDITION", "LEASE_LOST"),
        (AlreadyExists("dup"), "ALREADY_EXISTS", "ALREADY_EXISTS"),
        (Aborted("race"), "ABORTED", "ABORTED"),
        (PermissionDenied("nope", "orch:operate"), "PERMISSION_DENIED", "PERMISSION_DENIED"),
        (Unauthenticated("who"), "UNAUTHENTICATED", "UNAUTHENTICATED"),
        (ResourceExhausted("full", 2.5), "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"),
        (Unavailable("db down"), "UNAVAILABLE", "UNAVAILABLE"),
    ],
)
def test_each_error_maps_to_one_status_and_reason(
    error: OrchestratorError, status: str, reason: str
) -> None:
    assert isinstance(error, OrchestratorError)
    assert error.grpc_status == status
    assert error.reason == reason
    assert str(error) == error.message


def test_not_found_keeps_resource_and_derives_reason() -> None:
    err = NotFound("idempotency key", "k-1")
    assert err.reason == "IDEMPOTENCY_KEY_NOT_FOUND"
    assert (err.resource_type, err.resource_name) == ("idempotency key", "k-1")
    assert str(err) == "idempotency key 'k-1' not found"
    assert err.metadata == {"resource_type": "idempotency key", "resource_name": "k-1"}
    assert str(NotFound("run", "r1", "no run r1 in tenant acme")) == "no run r1 in tenant acme"


def test_invalid_argument_carries_field_violations() -> None:
    violation = FieldViolation("retry_policy.max_attempts", "must be between 1 and 100")
    err = InvalidArgument("invalid retry_policy", [violation])
    assert err.violations == (violation,)
    with pytest.raises(AttributeError):
        violation.field = "other"  # type: ignore[misc]


def test_failed_precondition_custom_reason_and_violations() -> None:
    v = PreconditionViolation("SOURCE_STATE", "sources/s1", "source is paused")
    err = FailedPrecondition("source s1 is paused", "SOURCE_PAUSED", [v])
    assert (err.reason, err.violations) == ("SOURCE_PAUSED", (v,))


def test_lease_lost_is_a_failed_precondition_with_its_ids() -> None:
    err = LeaseLost("j1", "lease-7")
    assert isinstance(err, FailedPrecondition)
    assert (err.job_id, err.lease_id) == ("j1", "lease-7")
    assert err.metadata == {"job_id": "j1", "lease_id": "lease-7"}
    assert "lease-7" in str(err)
    assert "j1" in str(err)


def test_illegal_transition_is_a_failed_precondition() -> None:
    assert issubclass(IllegalTransition, FailedPrecondition)


def test_permission_denied_and_resource_exhausted_details() -> None:
    assert PermissionDenied("x", "orch:admin").metadata == {"required_scope": "orch:admin"}
    assert PermissionDenied("x").required_scope is None
    assert PermissionDenied("x").metadata == {}
    err = ResourceExhausted("queue full", 3.0, reason="QUOTA_EXCEEDED")
    assert (err.retry_after_s, err.reason) == (3.0, "QUOTA_EXCEEDED")
    assert ResourceExhausted("x").retry_after_s is None
    with pytest.raises(ValueError, match="retry_after_s"):
        ResourceExhausted("x", -1.0)


def test_metadata_is_copied_not_shared() -> None:
    meta = {"a": "1"}
    err = Aborted("conflict", metadata=meta)
    meta["a"] = "2"
    assert err.metadata == {"a": "1"}
