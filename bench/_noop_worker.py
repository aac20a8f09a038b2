"""A no-op worker process for the end-to-end benchmark (Python SDK).

python -m bench._noop_worker TARGET TOKEN WORKER_ID CONCURRENCY JOB_TYPE
"""

from __future__ import annotations

import logging
import sys

from stella_orchestrator.worker import Job, Worker


def main() -> None:
    target, token, worker_id, concurrency, job_type = sys.argv[1:]
    logging.basicConfig(level=logging.WARNING)
    worker = Worker(target, token=token, worker_id=worker_id, concurrency=int(concurrency))

    async def noop(job: Job) -> None:
        return None

    worker.add_handler(job_type, noop)
    worker.run_forever()


if __name__ == "__main__":
    main()
