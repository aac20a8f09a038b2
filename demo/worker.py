"""A demo worker process: serves the four pipeline job types against the simulated upstream.

    python -m demo.worker --target 127.0.0.1:50052 --token $TOKEN --upstream http://127.0.0.1:PORT

advisory.ingest / vex.ingest fetch a window from the feed's host (429 → UpstreamThrottled
with the server's Retry-After, 5xx → UpstreamUnavailable, malformed JSON → ParseError) and
record the response as an artifact; sbom.scan and policy.evaluate do local work.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging

import httpx

from stella_orchestrator.worker import (
    Job,
    ParseError,
    UpstreamThrottled,
    UpstreamUnavailable,
    Worker,
    artifact,
    progress,
)

HOSTS = {
    "nvd": "services.nvd.nist.gov",
    "osv": "api.osv.dev",
    "ghsa": "api.github.com",
    "csaf-vendor": "csaf.vendor.example",
}


def build_worker(target: str, token: str, upstream: str, concurrency: int) -> Worker:
    worker = Worker(target, token=token, concurrency=concurrency)
    client = httpx.AsyncClient(base_url=upstream, timeout=10.0)

    async def fetch(job: Job, kind: str) -> dict[str, object]:
        host = HOSTS[str(job.payload["feed"])]
        window = int(job.payload["window"])
        response = await client.get(f"/{host}/{kind}", params={"window": window})
        if response.status_code == 429:
            retry_after = float(response.headers.get("Retry-After", "1"))
            raise UpstreamThrottled(f"{host} throttled {kind}", retry_after_s=retry_after)
        if response.status_code >= 500:
            raise UpstreamUnavailable(f"{host} answered {response.status_code} for {kind}")
        try:
            body = response.json()
        except json.JSONDecodeError as exc:
            raise ParseError(f"{host} sent malformed JSON for window {window}: {exc}") from exc
        progress(100.0, f"{len(body['items'])} items")
        artifact(f"{kind}-{window}.json", response.content, media_type="application/json")
        return {"items": len(body["items"])}

    @worker.handler("advisory.ingest")
    async def advisory_ingest(job: Job) -> dict[str, object]:
        return await fetch(job, "advisories")

    @worker.handler("vex.ingest")
    async def vex_ingest(job: Job) -> dict[str, object]:
        return await fetch(job, "vex")

    @worker.handler("sbom.scan")
    async def sbom_scan(job: Job) -> dict[str, object]:
        await asyncio.sleep(0.01)
        sbom = json.dumps({"window": job.payload["window"], "components": 42}).encode()
        artifact("sbom.cdx.json", sbom, media_type="application/vnd.cyclonedx+json")
        return {"components": 42}

    @worker.handler("policy.evaluate")
    async def policy_evaluate(job: Job) -> dict[str, object]:
        verdict = hashlib.sha256(json.dumps(job.payload, sort_keys=True).encode()).hexdigest()
        return {"verdict": "pass", "digest": verdict[:16]}

    return worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="127.0.0.1:50052")
    parser.add_argument("--token", required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the simulated upstream")
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    build_worker(args.target, args.token, args.upstream, args.concurrency).run_forever()


if __name__ == "__main__":
    main()
