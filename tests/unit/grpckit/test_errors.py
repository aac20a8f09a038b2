"""OrchestratorError -> status code + google.rpc details, parsed back with error_details()."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import grpc
import pytest

from orchestrator_grpckit import ERROR_DOMAIN, error_details

Meta = Callable[..., tuple[tuple[str, str], ...]]


async def _raise(
    channel: grpc.aio.Channel, kind: str, metadata: tuple[tuple[str, str], ...]
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await channel.unary_unary("/test.v1.Probe/Raise")(kind.encode(), metadata=metadata)
    return info.value


@pytest.mark.asyncio
async def test_not_found_carries_error_info_and_resource_info(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    error = await _raise(channel, "not_found", auth(mint()))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "job '0190-abc' not found"
    details = error_details(error)
    assert set(details) == {"ErrorInfo", "ResourceInfo"}
    info = details["ErrorInfo"]
    assert (info.reason, info.domain) == ("JOB_NOT_FOUND", ERROR_DOMAIN)
    assert dict(info.metadata) == {"resource_type": "job", "resource_name": "0190-abc"}
    resource = details["ResourceInfo"]
    assert (resource.resource_type, resource.resource_name) == ("job", "0190-abc")


@pytest.mark.asyncio
async def test_invalid_argument_carries_field_violations(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    error = await _raise(channel, "invalid", auth(mint()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error_details(error)
    assert details["ErrorInfo"].reason == "INVALID_ARGUMENT"
    violations = [(v.field, v.description) for v in details["BadRequest"].field_violations]
    assert violations == [
        ("retry_policy.max_attempts", "must be >= 1"),
        ("job_type", "must not be empty"),
    ]


@pytest.mark.asyncio
async def test_failed_precondition_and_lease_lost(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    error = await _raise(channel, "precondition", auth(mint()))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = error_details(error)
    assert details["ErrorInfo"].reason == "RUN_PAUSED"
    assert dict(details["ErrorInfo"].metadata) == {"run_id": "r1"}
    assert "PreconditionFailure" not in details  # no violations given, none sent

    error = await _raise(channel, "lease_lost", auth(mint()))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = error_details(error)
    assert details["ErrorInfo"].reason == "LEASE_LOST"
    [violation] = details["PreconditionFailure"].violations
    assert (violation.type, violation.subject) == ("LEASE", "jobs/job-1")


@pytest.mark.asyncio
async def test_resource_exhausted_carries_retry_info(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    error = await _raise(channel, "exhausted", auth(mint()))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = error_details(error)
    assert details["ErrorInfo"].reason == "QUOTA_EXCEEDED"
    delay = details["RetryInfo"].retry_delay
    assert (delay.seconds, delay.nanos) == (2, 500_000_000)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kind", "code", "reason"),
    [
        ("denied", grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"),
        ("unavailable", grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
    ],
)
async def test_other_errors_map_to_their_status(
    channel: grpc.aio.Channel,
    mint: Callable[..., str],
    auth: Meta,
    kind: str,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    error = await _raise(channel, kind, auth(mint()))
    assert error.code() == code
    assert error_details(error)["ErrorInfo"].reason == reason


@pytest.mark.asyncio
async def test_unknown_exception_is_internal_and_does_not_leak(
    channel: grpc.aio.Channel,
    mint: Callable[..., str],
    auth: Meta,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="orchestrator_grpckit"):
        error = await _raise(channel, "boom", auth(mint(), ("x-request-id", "req-boom")))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "postgres" not in (error.details() or "")
    assert "InternalBoom" not in (error.details() or "")
    assert "req-boom" in (error.details() or "")
    details = error_details(error)
    assert details["ErrorInfo"].reason == "INTERNAL"
    assert dict(details["ErrorInfo"].metadata) == {"request_id": "req-boom"}
    assert "DebugInfo" not in details
    # ... while the server log has the traceback under the request id.
    [record] = [r for r in caplog.records if r.exc_info]
    assert "InternalBoom" in caplog.text
    assert record.method == "/test.v1.Probe/Raise"


@pytest.mark.asyncio
async def test_errors_in_streams_are_mapped(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    stream = channel.unary_stream("/test.v1.Probe/Stream")
    received = []
    call = stream(b"2:exhausted", metadata=auth(mint()))
    received.append(await call.read())
    received.append(await call.read())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert received == [b"0", b"1"]
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "RetryInfo" in error_details(info.value)

    chat = channel.stream_stream("/test.v1.Probe/Chat")
    call = chat(metadata=auth(mint()))
    await call.write(b"boom")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() == grpc.StatusCode.INTERNAL

    collect = channel.stream_unary("/test.v1.Probe/Collect")

    async def parts():  # type: ignore[no-untyped-def]
        yield b"invalid"

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await collect(parts(), metadata=auth(mint()))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(info.value)["BadRequest"].field_violations


@pytest.mark.asyncio
async def test_success_and_servicer_aborts_have_no_details(
    channel: grpc.aio.Channel, mint: Callable[..., str], auth: Meta
) -> None:
    assert json.loads(await channel.unary_unary("/test.v1.Probe/Echo")(b"", metadata=auth(mint())))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await channel.unary_unary("/test.v1.Probe/Missing")(b"", metadata=auth(mint()))
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error_details(info.value) == {}
