"""Error classes: the label ↔ enum table, handler exceptions → failures, typed RPCError."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from stella.orchestrator.v1 import common_pb2
from stella_orchestrator.producer import FailedPreconditionError, NotFoundError
from stella_orchestrator.producer import RPCError as ProducerRPCError
from stella_orchestrator.worker import (
    ERROR_CLASSES,
    JobFailure,
    NotInJobError,
    ParseError,
    RPCError,
    SchemaMismatch,
    StellaError,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamUnavailable,
    WorkerError,
    error_class_enum,
    error_class_label,
)
from stella_orchestrator.worker._errors import classify


def test_table_covers_every_proto_class_by_its_suffix() -> None:
    names = {
        v.name: v.number
        for v in common_pb2.ErrorClass.DESCRIPTOR.values
        if v.name != "ERROR_CLASS_UNSPECIFIED"
    }
    expected = {name.removeprefix("ERROR_CLASS_").lower(): n for name, n in names.items()}
    assert dict(ERROR_CLASSES) == expected


@pytest.mark.parametrize(
    ("label", "value"),
    [
        ("http_429", common_pb2.ERROR_CLASS_HTTP_429),
        ("http_5xx", common_pb2.ERROR_CLASS_HTTP_5XX),
        ("HTTP_4XX", common_pb2.ERROR_CLASS_HTTP_4XX),
        ("timeout", common_pb2.ERROR_CLASS_TIMEOUT),
        ("parse_error", common_pb2.ERROR_CLASS_PARSE_ERROR),
        ("schema_mismatch", common_pb2.ERROR_CLASS_SCHEMA_MISMATCH),
        ("canceled", common_pb2.ERROR_CLASS_CANCELED),
        ("internal", common_pb2.ERROR_CLASS_INTERNAL),
        ("other", common_pb2.ERROR_CLASS_OTHER),
    ],
)
def test_label_to_enum_and_back(label: str, value: int) -> None:
    assert error_class_enum(label) == value
    assert error_class_label(value) == label.lower()


def test_unknown_label_is_refused_and_unspecified_reads_other() -> None:
    with pytest.raises(ValueError, match="unknown error class"):
        error_class_enum("http_418")
    assert error_class_label(common_pb2.ERROR_CLASS_UNSPECIFIED) == "other"
    with pytest.raises(ValueError, match="unknown error class"):
        JobFailure("x", error_class="nope")


@pytest.mark.parametrize(
    ("exc", "label", "retryable", "retry_after"),
    [
        (UpstreamThrottled(retry_after_s=30), "http_429", True, 30),
        (UpstreamUnavailable("503 from nvd"), "http_5xx", True, None),
        (UpstreamRejected("403"), "http_4xx", False, None),
        (ParseError("bad json at 3:7"), "parse_error", False, None),
        (SchemaMismatch("missing id"), "schema_mismatch", False, None),
        (JobFailure("meh"), "other", True, None),
        (JobFailure("meh", error_class="timeout", retryable=False), "timeout", False, None),
        (ParseError("x", retryable=True), "parse_error", True, None),
        (TimeoutError(), "timeout", True, None),
        (TimeoutError("slow"), "timeout", True, None),
        (KeyError("k"), "internal", True, None),
        (RuntimeError("boom"), "internal", True, None),
    ],
)
def test_classify(
    exc: BaseException, label: str, retryable: bool, retry_after: float | None
) -> None:
    info = classify(exc)
    assert (info.error_class, info.retryable, info.retry_after_s) == (label, retryable, retry_after)
    proto = info.to_proto()
    assert proto.error_class == ERROR_CLASSES[label]
    assert proto.retryable is retryable
    if retry_after is None:
        assert not proto.HasField("retry_after")
    else:
        assert proto.retry_after.ToNanoseconds() == retry_after * 1_000_000_000


def test_failure_messages_name_the_exception_and_are_bounded() -> None:
    assert classify(RuntimeError("boom")).message == "RuntimeError: boom"
    assert classify(KeyError("k")).message == "KeyError: 'k'"
    assert classify(ValueError()).message == "ValueError"
    proto = classify(ParseError("x" * 10_000)).to_proto()
    assert len(proto.message) == 2000


def test_retry_after_fractional_and_negative() -> None:
    assert (
        classify(UpstreamThrottled(retry_after_s=1.5)).to_proto().retry_after.ToMilliseconds()
        == 1500
    )
    with pytest.raises(ValueError, match="retry_after_s"):
        UpstreamThrottled(retry_after_s=-1)


def test_one_exception_root() -> None:
    # StellaError roots the whole SDK; RPCError is shared with the producer client, so it
    # is not a WorkerError (the worker's own errors are).
    for cls in (JobFailure, ParseError, RPCError, NotInJobError, UpstreamThrottled):
        assert issubclass(cls, StellaError)
    for cls in (JobFailure, ParseError, NotInJobError, UpstreamThrottled):
        assert issubclass(cls, WorkerError)
    assert issubclass(NotInJobError, RuntimeError)
    assert RPCError is ProducerRPCError


def test_rpc_errors_take_the_class_of_their_status() -> None:
    for code, cls in (
        (grpc.StatusCode.NOT_FOUND, NotFoundError),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPreconditionError),
        (grpc.StatusCode.DATA_LOSS, RPCError),
    ):
        error = RPCError.from_grpc(_FakeRpcError(code, "m", ()))
        assert type(error) is cls
        assert (error.code, error.message) == (code, "m")


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailing


def _status_trailer(*details) -> tuple:
    packed = []
    for d in details:
        holder = any_pb2.Any()
        holder.Pack(d)
        packed.append(holder)
    status = status_pb2.Status(code=16, message="no", details=packed)
    return (("grpc-status-details-bin", status.SerializeToString()),)


def test_rpc_error_parses_error_info_from_the_trailer() -> None:
    info = error_details_pb2.ErrorInfo(
        reason="UNAUTHENTICATED", domain="orchestrator.stella-ops.org"
    )
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromSeconds(3)
    error = RPCError.from_grpc(
        _FakeRpcError(
            grpc.StatusCode.UNAUTHENTICATED, "token expired", _status_trailer(info, retry)
        )
    )
    assert error.code is grpc.StatusCode.UNAUTHENTICATED
    assert error.reason == "UNAUTHENTICATED"
    assert error.message == "token expired"
    assert error.details["RetryInfo"].retry_delay.seconds == 3
    assert "UNAUTHENTICATED: token expired" in str(error)


def test_rpc_error_without_or_with_garbled_details() -> None:
    plain = RPCError.from_grpc(_FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down", ()))
    assert (plain.code, plain.reason, dict(plain.details)) == (grpc.StatusCode.UNAVAILABLE, "", {})
    garbled = RPCError.from_grpc(
        _FakeRpcError(grpc.StatusCode.INTERNAL, "x", (("grpc-status-details-bin", b"\xff\xff"),))
    )
    assert garbled.reason == ""
