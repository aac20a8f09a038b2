"""A worker process for the end-to-end tests: serves the given job types with a handler
that takes a few tens of milliseconds and returns which worker ran it.

    python -m tests.e2e._worker_proc TARGET TOKEN WORKER_ID CONCURRENCY TYPE [TYPE ...]
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import IO

from stella_orchestrator.worker import Job, Worker

ROOT = Path(__file__).resolve().parents[2]


def spawn(
    target: str, token: str, worker_id: str, concurrency: int, job_types: list[str], log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Starts this worker as a process; its output goes to ``log`` (the caller may close
    its own handle: the child keeps a descriptor of its own)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.e2e._worker_proc",
            target,
            token,
            worker_id,
            str(concurrency),
            *job_types,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def main() -> None:
    target, token, worker_id, concurrency, *job_types = sys.argv[1:]
    worker = Worker(target, token=token, worker_id=worker_id, concurrency=int(concurrency))

    async def handle(job: Job) -> dict[str, object]:
        await asyncio.sleep(random.uniform(0.02, 0.06))
        return {"worker": worker_id, "key": job.key}

    for job_type in job_types:
        worker.add_handler(job_type, handle)
    worker.run_forever()


if __name__ == "__main__":
    main()
