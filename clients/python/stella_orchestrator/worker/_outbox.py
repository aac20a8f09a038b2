"""The outgoing batcher of one Work stream.

Reports accumulate here and a single sender task writes them as ``WorkerBatch`` messages
(grpc.aio allows one writer per stream): it wakes on the first item, lingers
``max_batch_delay_s`` unless a full batch is already waiting, and writes up to ``max_batch``
entries per message. Heartbeats and progress are coalesced per job (the latest value wins),
completions and failures are never dropped or merged. Artifacts still waiting when their job
completes ride inside the Completion, so the server never sees an artifact for a job it has
already closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

from stella.orchestrator.v1 import leases_pb2

DEFAULT_MAX_BATCH: Final = 100


class Outbox:
    """Pending reports of one stream plus the wake-up event of its sender."""

    def __init__(self, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.max_batch = max_batch
        self.wake = asyncio.Event()
        self.completions: list[leases_pb2.Completion] = []
        self.failures: list[leases_pb2.Failure] = []
        self.heartbeats: dict[str, leases_pb2.Heartbeat] = {}
        self.progress: dict[str, leases_pb2.ProgressReport] = {}
        self.artifacts: list[leases_pb2.ArtifactRecord] = []
        self.credits = 0
        self.drain_reason: str | None = None  # a WorkerDrain to send before the next batch
        self.close_requested = False  # half-close the stream once everything is written

    def __len__(self) -> int:
        return (
            len(self.completions)
            + len(self.failures)
            + len(self.heartbeats)
            + len(self.progress)
            + len(self.artifacts)
            + (1 if self.credits else 0)
        )

    def _wake(self) -> None:
        self.wake.set()

    def add_heartbeat(self, heartbeat: leases_pb2.Heartbeat) -> None:
        self.heartbeats[heartbeat.job_id] = heartbeat
        self.progress.pop(heartbeat.job_id, None)  # a heartbeat with progress supersedes it
        self._wake()

    def add_progress(self, report: leases_pb2.ProgressReport) -> None:
        self.progress[report.job_id] = report
        self._wake()

    def add_artifact(self, record: leases_pb2.ArtifactRecord) -> None:
        self.artifacts.append(record)
        self._wake()

    def add_completion(self, completion: leases_pb2.Completion) -> None:
        waiting = [a for a in self.artifacts if a.job_id == completion.job_id]
        if waiting:
            self.artifacts = [a for a in self.artifacts if a.job_id != completion.job_id]
            completion.artifacts.extend(waiting)
        self._forget(completion.job_id)
        self.completions.append(completion)
        self._wake()

    def add_failure(self, failure: leases_pb2.Failure) -> None:
        # Artifacts of a failed attempt still go out: they help to debug the failure.
        self._forget(failure.job_id)
        self.failures.append(failure)
        self._wake()

    def add_credit(self, job_id: str) -> None:
        """A slot freed without a report (the job was canceled locally)."""
        self._forget(job_id)
        self.artifacts = [a for a in self.artifacts if a.job_id != job_id]
        self.credits += 1
        self._wake()

    def request_drain(self, reason: str) -> None:
        self.drain_reason = reason
        self._wake()

    def request_close(self) -> None:
        self.close_requested = True
        self._wake()

    def _forget(self, job_id: str) -> None:
        # The job's lease ends with this report: pending heartbeats/progress are moot.
        self.heartbeats.pop(job_id, None)
        self.progress.pop(job_id, None)

    def take_batch(self) -> leases_pb2.WorkerBatch | None:
        """Remove up to ``max_batch`` entries (results first) as one message."""
        if not len(self):
            return None
        room = self.max_batch
        batch = leases_pb2.WorkerBatch()

        def take_list(items: list[Any], target: Any) -> list[Any]:
            nonlocal room
            n = min(room, len(items))
            target.extend(items[:n])
            room -= n
            return items[n:]

        # Artifacts before completions (same order as the message fields): an artifact taken
        # in this batch for a job whose completion is also taken reaches the server first.
        self.artifacts = take_list(self.artifacts, batch.artifacts)
        self.completions = take_list(self.completions, batch.completions)
        self.failures = take_list(self.failures, batch.failures)
        while self.heartbeats and room > 0:
            batch.heartbeats.append(self.heartbeats.pop(next(iter(self.heartbeats))))
            room -= 1
        while self.progress and room > 0:
            batch.progress.append(self.progress.pop(next(iter(self.progress))))
            room -= 1
        batch.credits = self.credits
        self.credits = 0
        return batch


async def sender_loop(
    outbox: Outbox,
    write: Callable[[leases_pb2.WorkRequest], Awaitable[None]],
    done_writing: Callable[[], Awaitable[None]],
    max_batch_delay_s: float,
) -> None:
    """Write the outbox to the stream until a close was requested and everything is out.

    ``write`` and ``done_writing`` are the stream call's coroutine methods (abstract so
    unit tests can pass fakes).
    """
    while True:
        await outbox.wake.wait()
        outbox.wake.clear()
        if outbox.drain_reason is not None:
            reason, outbox.drain_reason = outbox.drain_reason, None
            await write(leases_pb2.WorkRequest(drain=leases_pb2.WorkerDrain(reason=reason)))
        if 0 < len(outbox) < outbox.max_batch and max_batch_delay_s > 0:
            await asyncio.sleep(max_batch_delay_s)  # linger: let concurrent results join
        while (batch := outbox.take_batch()) is not None:
            await write(leases_pb2.WorkRequest(batch=batch))
        if outbox.close_requested and not len(outbox) and outbox.drain_reason is None:
            await done_writing()
            return
