"""Idle worker streams: what 1,000 connected workers with nothing to do cost the leases
service — resident memory per stream and CPU while they wait.

A fleet waits most of the time (no work, or work throttled), so the server's cost per idle
``Work`` stream bounds how many workers one replica can hold. The leases and scheduler
services run as processes on a fresh database; one client process opens ``--streams`` Work
streams (one ``WorkerHello`` each, capacity 50, one job type with no jobs) over 20 channels
and holds them. Memory is the leases process's RSS (``/proc/<pid>/status``) with all streams
open minus with the first 20 open (so the process's one-time start-up and first-call
allocations are left out), divided by the streams in between. CPU is the leases process's
and PostgreSQL's over 10 s of holding them.

Figures (``name value unit``):

* ``idle_stream_server_kb``      leases-service memory per idle Work stream
* ``idle_streams_leases_cpu_pct`` the leases process's CPU while 1,000 streams idle (% of one core)
* ``idle_streams_postgres_cpu_pct`` PostgreSQL's CPU meanwhile (% of one core)

Alone: ``python -m bench.idle_streams [STREAMS]``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import grpc

from bench.__main__ import ADMIN_URL, SECRET, TENANT, Stack, figure, fresh_database, note
from bench.cpu_budget import postgres_cpu_s, process_cpu_s
from orchestrator_grpckit import mint_dev_token
from orchestrator_pg import drop_database
from stella.orchestrator.v1 import leases_pb2, leases_pb2_grpc

CHANNELS = 20
CAPACITY = 50
HOLD_S = 10.0
JOB_TYPE = "bench.idle"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class IdleStream:
    """One Work stream that said hello and then only listens."""

    def __init__(self, stub: leases_pb2_grpc.LeaseServiceStub, md, worker_id: str) -> None:
        self.call = stub.Work(metadata=md)
        self.worker_id = worker_id

    async def open(self) -> None:
        hello = leases_pb2.WorkerHello(
            worker_id=self.worker_id, job_types=[JOB_TYPE], capacity=CAPACITY, sdk="bench"
        )
        await self.call.write(leases_pb2.WorkRequest(hello=hello))
        answer = await self.call.read()
        if answer is grpc.aio.EOF or not answer.HasField("welcome"):
            raise RuntimeError(f"{self.worker_id}: no welcome ({answer})")

    def close(self) -> None:
        self.call.cancel()


async def _open(streams: list[IdleStream], batch: int = 100) -> None:
    for start in range(0, len(streams), batch):
        await asyncio.gather(*(s.open() for s in streams[start : start + batch]))


async def idle_stream_figures(count: int = 1000) -> dict[str, tuple[float, str]]:
    url, name = await fresh_database("orch_bench_idle")
    stack = Stack(url)
    channels: list[grpc.aio.Channel] = []
    streams: list[IdleStream] = []
    try:
        stack.wait_serving()
        leases_pid = stack.procs[1].pid
        target = f"127.0.0.1:{stack.ports['leases']}"
        token = mint_dev_token(SECRET, "bench-idle", [TENANT], ["orch:work"])
        md = (("authorization", f"Bearer {token}"),)
        # Separate channels: gRPC keeps one HTTP/2 connection per channel, like separate
        # worker processes would.
        channels = [grpc.aio.insecure_channel(target) for _ in range(CHANNELS)]
        stubs = [leases_pb2_grpc.LeaseServiceStub(c) for c in channels]
        streams = [
            IdleStream(stubs[i % CHANNELS], md, f"idle-{i}") for i in range(count + CHANNELS)
        ]
        await _open(streams[:CHANNELS])
        await asyncio.sleep(2)
        before = rss_kb(leases_pid)
        await _open(streams[CHANNELS:])
        await asyncio.sleep(2)
        after = rss_kb(leases_pid)
        cpu0, pg0, t0 = process_cpu_s(leases_pid), postgres_cpu_s(), time.monotonic()
        await asyncio.sleep(HOLD_S)
        cpu1, pg1, t1 = process_cpu_s(leases_pid), postgres_cpu_s(), time.monotonic()
        note(f"leases RSS {before} KiB with {CHANNELS} streams, {after} KiB with {len(streams)}")
        return {
            "idle_stream_server_kb": ((after - before) / count, "KiB"),
            "idle_streams_leases_cpu_pct": ((cpu1 - cpu0) / (t1 - t0) * 100, "%"),
            "idle_streams_postgres_cpu_pct": ((pg1 - pg0) / (t1 - t0) * 100, "%"),
        }
    finally:
        for stream in streams:
            stream.close()
        for channel in channels:
            await channel.close()
        stack.stop()
        drop_database(ADMIN_URL, name)


def print_figures(figures: dict[str, tuple[float, str]]) -> None:
    for name, (value, unit) in figures.items():
        figure(name, value, unit)


if __name__ == "__main__":
    print_figures(asyncio.run(idle_stream_figures(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)))
