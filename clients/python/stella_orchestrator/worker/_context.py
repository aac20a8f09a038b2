"""Job-bound calls: ``heartbeat``, ``progress``, ``artifact``, ``current_job``.

Each handler task runs with a context variable pointing at its :class:`ActiveJob`, so the
calls need no job argument and work from any depth of the handler's call stack, including
threads started with ``asyncio.to_thread`` (which copy the context). The calls only record
values; the session's ticker sends them (heartbeats at the interval the server gave,
progress at most every ``PROGRESS_MIN_INTERVAL_S``), so a handler may call them in a tight
loop without flooding the stream.
"""

from __future__ import annotations

import asyncio
import math
import threading
from contextvars import ContextVar
from typing import Final, Protocol

from stella_orchestrator.worker._digest import bytes_digest
from stella_orchestrator.worker._errors import NotInJobError
from stella_orchestrator.worker._job import ArtifactRecord, Job

MAX_PROGRESS_MESSAGE_CHARS: Final = 256
_DIGEST_HEX_LEN: Final = 64


class JobSink(Protocol):
    """Where an active job's reports go (the Work stream session)."""

    def record_artifact(self, active: ActiveJob, record: ArtifactRecord) -> None: ...


class ActiveJob:
    """Mutable state of one running handler; owned by the session, read by the ticker."""

    def __init__(self, job: Job, sink: JobSink, loop: asyncio.AbstractEventLoop) -> None:
        self.job = job
        self.sink = sink
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.progress_percent: float | None = None
        self.progress_message = ""
        self.progress_dirty = False  # changed since the last heartbeat/progress sent
        self.progress_urgent = False  # set by progress(): send without waiting for a heartbeat
        self.artifact_names: set[str] = set()
        self.cancel_reason: str | None = None  # set when the SDK cancels the handler
        self.task: asyncio.Task[None] | None = None

    def record_progress(self, percent: float | None, message: str, *, urgent: bool) -> None:
        # Plain attribute writes: safe from a to_thread worker, read by the loop's ticker.
        if percent is not None:
            self.progress_percent = percent
        self.progress_message = message[:MAX_PROGRESS_MESSAGE_CHARS]
        self.progress_dirty = True
        if urgent:
            self.progress_urgent = True

    def record_artifact(self, record: ArtifactRecord) -> None:
        if threading.get_ident() == self.loop_thread:
            self.sink.record_artifact(self, record)
        else:
            self.loop.call_soon_threadsafe(self.sink.record_artifact, self, record)


_current: ContextVar[ActiveJob | None] = ContextVar("stella_orchestrator_worker_job", default=None)


def bind(active: ActiveJob) -> None:
    """Bind ``active`` to the calling task's context (called first thing in a handler task)."""
    _current.set(active)


def _active(what: str) -> ActiveJob:
    active = _current.get()
    if active is None:
        raise NotInJobError(
            f"{what}() must be called from inside a job handler (or a thread/task that "
            "inherited its context)"
        )
    return active


def _check_percent(percent: float) -> float:
    value = float(percent)
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        raise ValueError(f"progress must be between 0 and 100, got {percent!r}")
    return value


def current_job() -> Job:
    """The job the calling handler runs.

    Returns:
        The job.

    Raises:
        NotInJobError: Called outside a handler.
    """
    return _active("current_job").job


def heartbeat(progress: float | None = None, message: str = "") -> None:
    """Record that the job is alive, optionally with progress.

    Coalesced: only the latest value is kept; the SDK heartbeats every leased job on its own
    at the interval the server's Welcome gave (a fraction of the lease TTL) and carries the
    latest progress with the next heartbeat. Calling it often is cheap.

    Args:
        progress: Completion estimate in percent (0-100); ``None`` keeps the previous one.
        message: Short status line (cut to 256 characters).

    Raises:
        NotInJobError: Called outside a handler.
        ValueError: ``progress`` outside 0-100.
    """
    active = _active("heartbeat")
    percent = None if progress is None else _check_percent(progress)
    if percent is None and not message:
        return  # liveness alone: the SDK's own heartbeats already say the handler runs
    active.record_progress(percent, message, urgent=False)


def progress(percent: float, message: str = "") -> None:
    """Report progress of the current job; it reaches the server within about a second.

    Coalesced like :func:`heartbeat`: calls in quick succession send only the latest value.

    Args:
        percent: Completion estimate in percent (0-100).
        message: Short status line (cut to 256 characters), e.g. ``"page 3 of 10"``.

    Raises:
        NotInJobError: Called outside a handler.
        ValueError: ``percent`` outside 0-100.
    """
    active = _active("progress")
    active.record_progress(_check_percent(percent), message, urgent=True)


def artifact(
    name: str,
    data: bytes | None = None,
    *,
    digest: str | None = None,
    size_bytes: int | None = None,
    media_type: str = "application/octet-stream",
    uri: str = "",
) -> ArtifactRecord:
    """Record an artifact the current job produced (content-addressed by sha256).

    Pass the bytes (the SDK hashes them; it does not upload them: store them yourself and
    pass ``uri``), or pass ``digest`` and ``size_bytes`` of content stored elsewhere. The
    record is sent with the next batch (or with the job's completion if that comes first).

    Args:
        name: Name, unique within the job.
        data: The content, to hash and measure.
        digest: ``"sha256:<64 lowercase hex>"``; checked against ``data`` when both are given.
        size_bytes: Size in bytes; required without ``data``.
        media_type: IANA media type.
        uri: Where the bytes are stored.

    Returns:
        The recorded artifact.

    Raises:
        NotInJobError: Called outside a handler.
        ValueError: Missing/inconsistent digest or size, a malformed digest, an empty or
            repeated name.
    """
    active = _active("artifact")
    if not name:
        raise ValueError("artifact name must not be empty")
    if name in active.artifact_names:
        raise ValueError(f"artifact {name!r} was already recorded for this job")
    if data is not None:
        computed = bytes_digest(bytes(data))
        if digest is not None and digest != computed:
            raise ValueError(f"digest {digest!r} does not match the data ({computed})")
        if size_bytes is not None and size_bytes != len(data):
            raise ValueError(f"size_bytes {size_bytes} does not match the data ({len(data)})")
        digest, size_bytes = computed, len(data)
    elif digest is None or size_bytes is None:
        raise ValueError("artifact() needs data, or both digest and size_bytes")
    hex_part = digest.removeprefix("sha256:")
    if (
        not digest.startswith("sha256:")
        or len(hex_part) != _DIGEST_HEX_LEN
        or any(c not in "0123456789abcdef" for c in hex_part)
    ):
        raise ValueError(f"digest must be 'sha256:' and 64 lowercase hex digits, got {digest!r}")
    if size_bytes < 0:
        raise ValueError(f"size_bytes must be >= 0, got {size_bytes}")
    record = ArtifactRecord(name, digest, size_bytes, media_type, uri)
    active.artifact_names.add(name)
    active.record_artifact(record)
    return record
