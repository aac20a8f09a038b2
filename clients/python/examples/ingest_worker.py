"""Example worker: serves ``advisory.ingest`` jobs against the leases service.

Run the stack (``make up``), mint a worker token and start it::

    TOKEN=$(.venv/bin/stella orchestrator token mint --tenant acme --scopes orch:work)
    python clients/python/examples/ingest_worker.py --target localhost:50052 --token $TOKEN

Payload of an ``advisory.ingest`` job (all optional)::

    {"url": "https://feeds.example/advisories.json",   # fetch it; else synthesize
     "pages": 3}                                         # synthetic pages to produce

What it shows: progress reports, a content-addressed artifact, upstream errors mapped to
failure classes (HTTP 429 with Retry-After → ``http_429``, 5xx → ``http_5xx``, bad JSON →
``parse_error``, wrong shape → ``schema_mismatch``), and a graceful drain on SIGTERM/Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import urllib.error
import urllib.request
from typing import Any

from stella_orchestrator.worker import (
    Job,
    ParseError,
    SchemaMismatch,
    UpstreamThrottled,
    UpstreamUnavailable,
    Worker,
    artifact,
    progress,
)

FETCH_TIMEOUT_S = 30.0


def _fetch(url: str) -> bytes:
    """Blocking GET mapped onto the SDK's failure classes (runs in a thread)."""
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 429:
            retry_after = exc.headers.get("Retry-After", "")
            raise UpstreamThrottled(
                f"{url} answered 429",
                retry_after_s=float(retry_after) if retry_after.isdigit() else None,
            ) from None
        if exc.code >= 500:
            raise UpstreamUnavailable(f"{url} answered {exc.code}") from None
        raise


async def ingest(job: Job) -> dict[str, Any]:
    """Fetch (or synthesize) advisories, store them as an NDJSON artifact, return a summary."""
    url = job.payload.get("url")
    if url:
        progress(5, "fetching")
        body = await asyncio.to_thread(_fetch, url)  # contextvars follow into the thread
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise ParseError(f"{url} is not JSON: {exc}") from None
        if not isinstance(document, list):
            raise SchemaMismatch(f"{url}: expected a JSON array of advisories")
        records = document
    else:
        pages = int(job.payload.get("pages", 3))
        records = []
        for page in range(pages):
            await asyncio.sleep(0.05)  # stands in for the upstream call
            records += [{"id": f"ADV-{page}-{i}", "severity": "high"} for i in range(10)]
            progress(100 * (page + 1) / pages, f"page {page + 1} of {pages}")
    lines = b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in records)
    stored = artifact("advisories.ndjson", lines, media_type="application/x-ndjson")
    return {"count": len(records), "artifact_digest": stored.digest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--target",
        default=os.environ.get("ORCH_LEASES_TARGET", "localhost:50052"),
        help="leases service: host:port, a comma list of replicas, or dns:///name:port",
    )
    parser.add_argument("--token", default=os.environ.get("ORCH_TOKEN"), help="orch:work token")
    parser.add_argument("--tenant", default=None, help="tenant, when the token names several")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--job-type", default="advisory.ingest")
    parser.add_argument(
        "--tls-ca",
        default=os.environ.get("STELLA_TLS_CA_FILE") or None,
        help="PEM CA file: connect over TLS trusting it (env STELLA_TLS_CA_FILE)",
    )
    args = parser.parse_args()
    if not args.token:
        parser.error("--token (or ORCH_TOKEN) is required")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    worker = Worker(
        args.target,
        token=args.token,
        tenant=args.tenant,
        concurrency=args.concurrency,
        tls_ca_file=args.tls_ca,
    )
    worker.add_handler(args.job_type, ingest)
    worker.run_forever()  # SIGTERM/SIGINT: drain; a second signal stops at once


if __name__ == "__main__":
    main()
