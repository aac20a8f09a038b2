"""The Python side of the cross-language tests: the same echo handler as the Go and Rust
example workers' ``-types`` mode (one artifact ``python:<job id>:<key>``).

    python -m tests.crosslang._python_worker TARGET TOKEN WORKER_ID CONCURRENCY TYPES DELAY_S

TYPES is a comma-separated list of job types. With ``STELLA_TLS_CA_FILE`` set it connects
over TLS trusting that CA (as the Go and Rust example workers do).
"""

from __future__ import annotations

import asyncio
import os
import sys

from stella_orchestrator.worker import Job, Worker, artifact, progress


def main() -> None:
    target, token, worker_id, concurrency, types, delay_s = sys.argv[1:]
    worker = Worker(
        target,
        token=token,
        worker_id=worker_id,
        concurrency=int(concurrency),
        tls_ca_file=os.environ.get("STELLA_TLS_CA_FILE") or None,
    )

    async def echo(job: Job) -> dict[str, object]:
        progress(50, "python halfway")
        await asyncio.sleep(float(delay_s))
        record = artifact(
            "echo.txt", f"python:{job.id}:{job.key}".encode(), media_type="text/plain"
        )
        return {
            "worker": worker_id,
            "key": job.key,
            "sdk": "python",
            "artifact_digest": record.digest,
        }

    for job_type in types.split(","):
        worker.add_handler(job_type, echo)
    worker.run_forever()


if __name__ == "__main__":
    main()
