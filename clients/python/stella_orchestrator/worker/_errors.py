"""The worker SDK's exceptions and the one table from error-class labels to the proto enum.

``WorkerError`` roots the worker's own errors, under the SDK's root
:class:`~stella_orchestrator.errors.StellaError` (STYLE rule 13); ``RPCError`` is shared with
the producer client (:mod:`stella_orchestrator.errors`). Handlers raise :class:`JobFailure`
(or a subclass) to fail a job deliberately; anything else is classified by :func:`classify` so a
failure always reaches the server with a class, a message and a retry decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from stella.orchestrator.v1 import common_pb2
from stella_orchestrator.errors import StellaError

MAX_ERROR_MESSAGE_CHARS: Final = 2000
"""Failure messages are cut to this length before they leave the worker."""

# The one table (label ↔ enum). Labels are the lower-case enum suffixes that metrics, REST
# and the ledger use, so the mapping is mechanical but spelled out to stay greppable.
ERROR_CLASSES: Final[Mapping[str, int]] = MappingProxyType(
    {
        "http_429": common_pb2.ERROR_CLASS_HTTP_429,
        "http_5xx": common_pb2.ERROR_CLASS_HTTP_5XX,
        "http_4xx": common_pb2.ERROR_CLASS_HTTP_4XX,
        "timeout": common_pb2.ERROR_CLASS_TIMEOUT,
        "parse_error": common_pb2.ERROR_CLASS_PARSE_ERROR,
        "schema_mismatch": common_pb2.ERROR_CLASS_SCHEMA_MISMATCH,
        "lease_expired": common_pb2.ERROR_CLASS_LEASE_EXPIRED,
        "worker_crash": common_pb2.ERROR_CLASS_WORKER_CRASH,
        "canceled": common_pb2.ERROR_CLASS_CANCELED,
        "internal": common_pb2.ERROR_CLASS_INTERNAL,
        "other": common_pb2.ERROR_CLASS_OTHER,
    }
)
"""Error-class label (``"http_429"``) → ``stella.orchestrator.v1.ErrorClass`` value."""

_LABELS_BY_ENUM: Final[Mapping[int, str]] = {v: k for k, v in ERROR_CLASSES.items()}


def error_class_enum(label: str) -> int:
    """Map an error-class label to the proto ``ErrorClass`` value.

    Args:
        label: A key of :data:`ERROR_CLASSES`, case-insensitive.

    Returns:
        The enum value.

    Raises:
        ValueError: The label is not a known class.
    """
    try:
        return ERROR_CLASSES[label.lower()]
    except KeyError:
        known = ", ".join(ERROR_CLASSES)
        raise ValueError(f"unknown error class {label!r} (known: {known})") from None


def error_class_label(value: int) -> str:
    """Map a proto ``ErrorClass`` value to its label; ``UNSPECIFIED`` reads as ``"other"``."""
    return _LABELS_BY_ENUM.get(value, "other")


class WorkerError(StellaError):
    """Root of the worker SDK's own exceptions (under :class:`StellaError`, the root it
    shares with the producer client; :class:`RPCError` derives from that root directly)."""


class NotInJobError(WorkerError, RuntimeError):
    """A job-bound function (``heartbeat``, ``progress``, ``artifact``, ``current_job``) was
    called outside a running handler (or from a thread that does not carry its context)."""


class JobFailure(WorkerError):
    """Raise from a handler to fail the current attempt with a chosen class.

    Args:
        message: Human-readable reason (no secrets: it is stored and shown in the Console).
        error_class: A label of :data:`ERROR_CLASSES` (``"http_429"``, ``"parse_error"``...).
        retryable: Whether another attempt may succeed; ``False`` dead-letters the job.
        retry_after_s: Minimum delay before the next attempt (an upstream Retry-After).
        code: Machine-readable detail code, e.g. ``"nvd.api_key_invalid"``.

    Raises:
        ValueError: Unknown ``error_class`` or a negative ``retry_after_s``.
    """

    default_class: str = "other"
    default_retryable: bool = True
    default_message: str = "job failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        error_class: str | None = None,
        retryable: bool | None = None,
        retry_after_s: float | None = None,
        code: str = "",
    ) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)
        label = (error_class or self.default_class).lower()
        error_class_enum(label)  # validates
        if retry_after_s is not None and retry_after_s < 0:
            raise ValueError(f"retry_after_s must be >= 0, got {retry_after_s}")
        self.error_class = label
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after_s = retry_after_s
        self.code = code


class UpstreamThrottled(JobFailure):
    """The upstream answered HTTP 429: class ``http_429``, retryable; pass the upstream's
    Retry-After as ``retry_after_s`` (it also pauses the source's rate-limit bucket)."""

    default_class = "http_429"
    default_message = "upstream throttled the request (HTTP 429)"


class UpstreamUnavailable(JobFailure):
    """The upstream answered HTTP 5xx: class ``http_5xx``, retryable."""

    default_class = "http_5xx"
    default_message = "upstream unavailable (HTTP 5xx)"


class UpstreamRejected(JobFailure):
    """The upstream answered HTTP 4xx other than 429: class ``http_4xx``, not retryable."""

    default_class = "http_4xx"
    default_retryable = False
    default_message = "upstream rejected the request (HTTP 4xx)"


class ParseError(JobFailure):
    """The upstream response could not be parsed: class ``parse_error``, not retryable."""

    default_class = "parse_error"
    default_retryable = False
    default_message = "could not parse the upstream response"


class SchemaMismatch(JobFailure):
    """The upstream response parsed but broke the expected schema: class
    ``schema_mismatch``, not retryable."""

    default_class = "schema_mismatch"
    default_retryable = False
    default_message = "upstream response does not match the expected schema"


@dataclass(frozen=True)
class FailureInfo:
    """What a failed attempt reports: the proto ``JobError`` fields before encoding."""

    error_class: str
    message: str
    retryable: bool
    retry_after_s: float | None = None
    code: str = ""

    def to_proto(self) -> common_pb2.JobError:
        error = common_pb2.JobError(
            error_class=error_class_enum(self.error_class),  # type: ignore[arg-type]
            message=self.message[:MAX_ERROR_MESSAGE_CHARS],
            retryable=self.retryable,
            code=self.code,
        )
        if self.retry_after_s is not None:
            error.retry_after.FromNanoseconds(round(self.retry_after_s * 1e9))
        return error


def classify(exc: BaseException) -> FailureInfo:
    """Turn a handler's exception into the failure it reports.

    ``JobFailure`` keeps its own class; ``TimeoutError`` (= ``asyncio.TimeoutError``) is
    ``timeout``; anything else is ``internal`` and retryable (a bug may be transient, and
    the retry policy bounds the attempts).

    Args:
        exc: The exception the handler raised.

    Returns:
        The failure to report.
    """
    if isinstance(exc, JobFailure):
        return FailureInfo(exc.error_class, exc.message, exc.retryable, exc.retry_after_s, exc.code)
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is an alias since 3.11
        return FailureInfo("timeout", _describe(exc) or "timed out", True)
    return FailureInfo("internal", _describe(exc), True)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
