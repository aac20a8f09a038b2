"""Job-bound calls: refused outside a handler; inside one they record coalesced values."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from stella.orchestrator.v1 import leases_pb2
from stella_orchestrator.worker import (
    ArtifactRecord,
    Job,
    NotInJobError,
    artifact,
    bytes_digest,
    current_job,
    heartbeat,
    progress,
)
from stella_orchestrator.worker._context import ActiveJob, bind


@pytest.mark.parametrize(
    "call",
    [
        lambda: heartbeat(),
        lambda: heartbeat(50),
        lambda: progress(10, "x"),
        lambda: artifact("a.txt", b"x"),
        current_job,
    ],
)
def test_outside_a_handler_raises(call) -> None:
    with pytest.raises(NotInJobError, match="inside a job handler"):
        call()


class _Sink:
    def __init__(self) -> None:
        self.artifacts: list[ArtifactRecord] = []

    def record_artifact(self, active: ActiveJob, record: ArtifactRecord) -> None:
        self.artifacts.append(record)


def _in_job(fn, sink: _Sink | None = None):
    """Run ``fn`` in a fresh context bound to a job; returns (result, active)."""
    loop = asyncio.new_event_loop()
    try:
        job = Job.from_assignment(
            leases_pb2.Assignment(job_id="j1", lease_id="l1", job_type="t", attempt=1)
        )
        active = ActiveJob(job, sink or _Sink(), loop)

        def body():
            bind(active)
            return fn()

        return contextvars.copy_context().run(body), active
    finally:
        loop.close()


def test_current_job_and_coalesced_progress() -> None:
    def body():
        assert current_job().id == "j1"
        heartbeat()  # liveness only: records nothing
        heartbeat(5, "start")
        heartbeat(20)
        return current_job()

    job, active = _in_job(body)
    assert job.lease_id == "l1"
    assert (active.progress_percent, active.progress_message) == (20, "")
    assert active.progress_dirty
    assert not active.progress_urgent

    _, active = _in_job(lambda: progress(42.5, "page 3 of 10"))
    assert (active.progress_percent, active.progress_message) == (42.5, "page 3 of 10")
    assert active.progress_urgent


@pytest.mark.parametrize("bad", [-1, 100.5, float("nan")])
def test_progress_bounds(bad: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        _in_job(lambda: progress(bad))


def test_artifact_hashes_bytes() -> None:
    sink = _Sink()
    record, _ = _in_job(lambda: artifact("a.ndjson", b"", media_type="application/x-ndjson"), sink)
    assert record.digest == bytes_digest(b"")
    assert record.digest.endswith("b855")
    assert (record.size_bytes, record.media_type) == (0, "application/x-ndjson")
    assert sink.artifacts == [record]
    proto = record.to_proto("j1", "l1")
    assert (proto.job_id, proto.lease_id, proto.digest) == ("j1", "l1", record.digest)


def test_artifact_by_reference_and_validation() -> None:
    digest = "sha256:" + "ab" * 32

    def body():
        ref = artifact("big.tar", digest=digest, size_bytes=10, uri="s3://b/big.tar")
        with pytest.raises(ValueError, match="already recorded"):
            artifact("big.tar", b"x")
        with pytest.raises(ValueError, match="needs data"):
            artifact("c", digest=digest)
        with pytest.raises(ValueError, match="64 lowercase hex"):
            artifact("d", digest="sha256:ABC", size_bytes=1)
        with pytest.raises(ValueError, match="does not match"):
            artifact("e", b"abc", digest=digest)
        with pytest.raises(ValueError, match="empty"):
            artifact("", b"abc")
        return ref

    ref, active = _in_job(body)
    assert ref == ArtifactRecord(
        "big.tar", digest, 10, "application/octet-stream", "s3://b/big.tar"
    )
    assert active.artifact_names == {"big.tar"}
