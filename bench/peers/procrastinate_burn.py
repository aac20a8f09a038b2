"""Procrastinate burn-down for bench/peers, run by the bench cache venv's python (it imports
procrastinate, which our own venv does not have; see bench/peers/__init__.py).

Parent (default): applies the Procrastinate schema to DATABASE_URL, defers JOBS no-op jobs with
``batch_defer_async``, starts PROCESSES worker processes (this script with ``--worker``), waits
until each has imported its modules, then says "go" and times until no job is left in
``todo``/``doing``, polling every 100 ms. Prints ``<FIGURE> <jobs/s> jobs/s`` on stdout;
diagnostics go to stderr prefixed with '#'.

Env: DATABASE_URL, JOBS (5000), PROCESSES (4), CONCURRENCY (10 async jobs per worker),
FIGURE, TIMEOUT_S (300). Each worker's connection pool has CONCURRENCY + 2 connections (one
for LISTEN/NOTIFY, one spare) so the pool is not what limits it; everything else is
Procrastinate's defaults (listen_notify on, jobs kept after completion).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time

import procrastinate
import psycopg

DATABASE_URL = os.environ.get("DATABASE_URL", "")
JOBS = int(os.environ.get("JOBS", "5000"))
PROCESSES = int(os.environ.get("PROCESSES", "4"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "10"))
TIMEOUT_S = float(os.environ.get("TIMEOUT_S", "300"))
FIGURE = os.environ.get("FIGURE", "peer_procrastinate_jobs_per_s")
DEFER_BATCH = 1000
POLL_S = 0.1
SCRIPT = os.path.abspath(__file__)

# The task lives in this script, which is __main__ in both roles; the task is looked up by its
# name, so Procrastinate's "App is instantiated in the main Python module" warning is noise.
logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(
        conninfo=DATABASE_URL, min_size=1, max_size=CONCURRENCY + 2
    )
)


@app.task(name="noop")
async def noop(i: int) -> None:
    return None


def note(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


async def _read_line() -> str:
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


async def worker_main() -> None:
    print("ready", flush=True)
    if await _read_line() != "go":
        return
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(concurrency=CONCURRENCY, install_signal_handlers=False)
        )
        await _read_line()  # "stop", or EOF when the parent goes away
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(worker, 10)


async def _start_worker() -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        SCRIPT,
        "--worker",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode().strip()
    if line != "ready":
        raise RuntimeError(f"worker said {line!r}")
    return proc


async def parent_main() -> None:
    if not DATABASE_URL:
        raise SystemExit("DATABASE_URL is required")
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        enqueue_start = time.perf_counter()
        for offset in range(0, JOBS, DEFER_BATCH):
            n = min(DEFER_BATCH, JOBS - offset)
            await noop.batch_defer_async(*({"i": offset + i} for i in range(n)))
        note(f"{FIGURE}: enqueued {JOBS} jobs in {time.perf_counter() - enqueue_start:.2f} s")

    workers: list[asyncio.subprocess.Process] = []
    try:
        workers = list(
            await asyncio.wait_for(asyncio.gather(*(_start_worker() for _ in range(PROCESSES))), 30)
        )
        async with await psycopg.AsyncConnection.connect(DATABASE_URL, autocommit=True) as conn:
            start = time.perf_counter()
            for proc in workers:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            while True:
                cur = await conn.execute(
                    "SELECT count(*) FILTER (WHERE status IN ('todo', 'doing')),"
                    " count(*) FILTER (WHERE status = 'failed') FROM procrastinate_jobs"
                )
                left, failed = await cur.fetchone() or (0, 0)
                if failed:
                    raise RuntimeError(f"{failed} jobs failed")
                if left == 0:
                    break
                if time.perf_counter() - start > TIMEOUT_S:
                    raise RuntimeError(f"burn-down timed out with {left} jobs left")
                await asyncio.sleep(POLL_S)
            elapsed = time.perf_counter() - start
        note(
            f"{FIGURE}: {JOBS} jobs, {PROCESSES} processes x concurrency {CONCURRENCY}"
            f" in {elapsed:.2f} s"
        )
        print(f"{FIGURE} {JOBS / elapsed:.1f} jobs/s", flush=True)
    finally:
        for proc in workers:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.write(b"stop\n")
                proc.stdin.close()
        for proc in workers:
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="# %(name)s %(levelname)s: %(message)s")
    try:
        asyncio.run(worker_main() if "--worker" in sys.argv[1:] else parent_main())
    except Exception as exc:  # reported as one line; run_peers omits the figure
        note(f"procrastinate burn failed: {exc!r}")
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
