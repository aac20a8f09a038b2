"""Console event streams under load: many SSE clients of one tenant during a burn-down.

The scheduler, leases and gateway services run as processes on a fresh database; ``streams``
clients open ``GET /api/v1/orchestrator/events/stream`` (the Console's live feed: the whole
tenant, from the head) and keep reading while jobs are offered at ``rate`` jobs/s for
``seconds`` and burned by SDK workers. Each client records the receive time of every event
id (seq); afterwards the ledger's ``occurred_at`` of each seq gives the delivery lag. Figures:

- ``sse_streams``: clients that stayed connected to the end (all, or the figure says not);
- ``sse_events_per_stream``: events each client received (the same for every client when
  none was cut; ``sse_streams_cut`` counts those that were);
- ``sse_delivery_lag_p50_ms`` / ``_p99_ms``: ledger commit → client receipt, over every
  (client, event);
- ``sse_gateway_rss_mb`` / ``sse_gateway_peak_rss_mb``: the gateway's resident memory at the
  end and its peak (``/proc``), with every stream open;
- ``sse_gateway_cpu_s``: CPU seconds the gateway used over the window.

``python -m bench.sse_load --streams 500 --rate 40 --seconds 30``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import urllib.request

import grpc
import psycopg

from bench.__main__ import (
    ADMIN_URL,
    SECRET,
    TENANT,
    Stack,
    _payload,
    figure,
    fresh_database,
    note,
    start_workers,
    stop_workers,
    wait_done,
)
from bench.ports import free_port
from orchestrator_grpckit import mint_dev_token
from orchestrator_pg import drop_database
from stella.orchestrator.v1 import resources_pb2, scheduler_pb2, scheduler_pb2_grpc

JOB_TYPE = "bench.sse"
STREAM_PATH = "/api/v1/orchestrator/events/stream"
WORKERS = 2


class Gateway:
    """The gateway as a process in front of a :class:`Stack`'s scheduler."""

    def __init__(self, stack: Stack, database_url: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "ORCH_DATABASE_URL": database_url,
            "ORCH_AUTH_HS256_SECRET": SECRET,
            "ORCH_GATEWAY_HTTP_PORT": str(self.port),
            "ORCH_SCHEDULER_TARGET": f"127.0.0.1:{stack.ports['scheduler']}",
            # One caller opens every stream: its per-caller limit must not be the bottleneck.
            "ORCH_GATEWAY_RATE_PER_S": "100000",
            "ORCH_GATEWAY_RATE_BURST": "100000",
            "ORCH_LOG_LEVEL": "WARNING",
        }
        self.proc = subprocess.Popen([sys.executable, "-m", "orchestrator_gateway"], env=env)

    def wait_serving(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the gateway did not answer /healthz") from None
                time.sleep(0.2)

    def rss_mb(self) -> tuple[float, float]:
        """(resident, peak resident) in MiB."""
        fields = {}
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                fields[key] = value.split()
        return int(fields["VmRSS"][0]) / 1024, int(fields["VmHWM"][0]) / 1024

    def cpu_s(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            parts = stat.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Client:
    """One SSE reader: the receive time of each event id, and whether it was cut."""

    def __init__(self) -> None:
        self.received: dict[int, float] = {}
        self.opened = asyncio.Event()
        self.ended = False

    async def run(self, port: int, token: str, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
            self.opened.set()
            pending = b""
            while not stop.is_set():
                chunk = await reader.read(65536)
                if not chunk:
                    self.ended = True
                    return
                now = time.time()
                pending += chunk
                # Chunked transfer framing lines are noise here; only "id: <seq>" lines count.
                lines = pending.split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if line.startswith(b"id: "):
                        self.received[int(line[4:])] = now
        finally:
            writer.close()


async def _offer(stub, md, rate: int, seconds: int) -> int:
    """Submits ``rate`` jobs/s in ticks of 100 ms; returns how many."""
    per_tick = max(1, rate // 10)
    start = time.perf_counter()
    total = 0
    for tick in range(seconds * 10):
        specs = [
            resources_pb2.JobSpec(job_type=JOB_TYPE, payload=_payload(total + i))
            for i in range(per_tick)
        ]
        await stub.SubmitJobs(scheduler_pb2.SubmitJobsRequest(jobs=specs), metadata=md)
        total += per_tick
        delay = start + (tick + 1) * 0.1 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    return total


async def sse_load_figures(streams: int, rate: int, seconds: int) -> dict[str, float]:
    url, name = await fresh_database("orch_bench_sse")
    stack = Stack(url)
    gateway = Gateway(stack, url)
    workers = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        stack.wait_serving()
        gateway.wait_serving()
        reader_token = mint_dev_token(SECRET, "console", [TENANT], ["orch:read"])
        clients = [Client() for _ in range(streams)]
        for client in clients:
            tasks.append(asyncio.create_task(client.run(gateway.port, reader_token, stop)))
        async with asyncio.timeout(120):
            await asyncio.gather(*(c.opened.wait() for c in clients))
        note(f"sse: {streams} streams open")
        workers = start_workers(f"127.0.0.1:{stack.ports['leases']}", JOB_TYPE, WORKERS)
        cpu_before = gateway.cpu_s()
        md = (
            (
                "authorization",
                f"Bearer {mint_dev_token(SECRET, 'bench', [TENANT], ['orch:operate'])}",
            ),
        )
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.ports['scheduler']}") as channel:
            total = await _offer(
                scheduler_pb2_grpc.SchedulerServiceStub(channel), md, rate, seconds
            )
        with psycopg.connect(url, autocommit=True) as db:
            await asyncio.to_thread(wait_done, db, JOB_TYPE, total, 300)
            (last_seq,) = db.execute("SELECT max(seq) FROM orchestrator.events").fetchone()
            # Every client has every event once it holds the last one (or was cut).
            deadline = time.monotonic() + 120
            while any(last_seq not in c.received and not c.ended for c in clients):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            rss, peak = gateway.rss_mb()
            cpu = gateway.cpu_s() - cpu_before
            occurred = {
                seq: at.timestamp()
                for seq, at in db.execute("SELECT seq, occurred_at FROM orchestrator.events")
            }
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stop_workers(workers)
        gateway.stop()
        stack.stop()
        drop_database(ADMIN_URL, name)
    lags = [
        (at - occurred[seq]) * 1000
        for client in clients
        for seq, at in client.received.items()
        if seq in occurred
    ]
    q = statistics.quantiles(lags, n=100)
    whole = [c for c in clients if not c.ended]
    return {
        "sse_streams": len(whole),
        "sse_streams_cut": sum(c.ended for c in clients),
        "sse_events_per_stream": statistics.median(len(c.received) for c in clients),
        "sse_delivery_lag_p50_ms": q[49],
        "sse_delivery_lag_p99_ms": q[98],
        "sse_gateway_rss_mb": rss,
        "sse_gateway_peak_rss_mb": peak,
        "sse_gateway_cpu_s": cpu,
    }


UNITS = {
    "sse_streams": "streams",
    "sse_streams_cut": "streams",
    "sse_events_per_stream": "events",
    "sse_gateway_cpu_s": "s",
}


def print_figures(figures: dict[str, float]) -> None:
    for key, value in figures.items():
        unit = UNITS.get(key, "MiB" if key.endswith("_mb") else "ms")
        figure(key, value, unit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--rate", type=int, default=40, help="jobs offered per second")
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    print_figures(asyncio.run(sse_load_figures(args.streams, args.rate, args.seconds)))


if __name__ == "__main__":
    main()
