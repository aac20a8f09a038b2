"""Demo-shaped data for the Console's browser test, made the way the demo makes it (demo/):
four feeds (sources), one run each of 36 hourly windows ingest → vex → sbom plus 6 policy
evaluations (114 jobs), worked by a worker over gRPC with failures — upstream 5xx and parse
errors that kill windows (their descendants end canceled), timeouts that retry; then
schedules, quotas and a webhook subscription."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from stella.orchestrator.v1 import (
    common_pb2,
    leases_pb2,
    leases_pb2_grpc,
    resources_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

FEEDS = (
    ("nvd", "services.nvd.nist.gov"),
    ("osv", "api.osv.dev"),
    ("ghsa", "api.github.com"),
    ("csaf-vendor", "csaf.vendor.example"),
)
WINDOWS = 36
POLICY_SHARD = 6
STAGES = ("advisory.ingest", "vex.ingest", "sbom.scan", "policy.evaluate")
JOBS_PER_RUN = WINDOWS * 3 + WINDOWS // POLICY_SHARD  # 114
# Failures by (feed, key): error class and whether it is retryable (a retryable failure's next
# attempt succeeds).
E = common_pb2
FAILURES: dict[tuple[str, str], tuple[int, bool]] = {
    ("nvd", "ingest-5"): (E.ERROR_CLASS_HTTP_5XX, False),
    ("nvd", "ingest-17"): (E.ERROR_CLASS_HTTP_5XX, False),
    ("nvd", "vex-30"): (E.ERROR_CLASS_SCHEMA_MISMATCH, False),
    ("ghsa", "ingest-3"): (E.ERROR_CLASS_TIMEOUT, True),
    ("ghsa", "ingest-4"): (E.ERROR_CLASS_TIMEOUT, True),
    ("ghsa", "sbom-9"): (E.ERROR_CLASS_HTTP_5XX, True),
    **{("csaf-vendor", f"ingest-{w}"): (E.ERROR_CLASS_PARSE_ERROR, False) for w in range(6)},
}
WINDOW_START = datetime(2026, 12, 1, tzinfo=UTC)


def _dag(feed: str, source_id: str) -> list[resources_pb2.JobSpec]:
    policy = common_pb2.RetryPolicy(max_attempts=3, backoff_multiplier=1.0)
    policy.initial_backoff.FromMilliseconds(100)
    policy.max_backoff.FromMilliseconds(100)
    jobs = []
    for w in range(WINDOWS):
        for key, job_type, parent in (
            (f"ingest-{w}", STAGES[0], None),
            (f"vex-{w}", STAGES[1], f"ingest-{w}"),
            (f"sbom-{w}", STAGES[2], f"vex-{w}"),
        ):
            spec = resources_pb2.JobSpec(
                key=key,
                job_type=job_type,
                source_id=source_id,
                depends_on=[parent] if parent else [],
                retry_policy=policy,
            )
            spec.payload.update({"feed": feed, "window": w})
            spec.event_time_window.start.FromDatetime(WINDOW_START + timedelta(hours=w))
            spec.event_time_window.end.FromDatetime(WINDOW_START + timedelta(hours=w + 1))
            jobs.append(spec)
    for shard in range(WINDOWS // POLICY_SHARD):
        windows = range(shard * POLICY_SHARD, (shard + 1) * POLICY_SHARD)
        spec = resources_pb2.JobSpec(
            key=f"policy-{shard}",
            job_type=STAGES[3],
            source_id=source_id,
            depends_on=[f"sbom-{w}" for w in windows],
            retry_policy=policy,
        )
        spec.payload.update({"feed": feed, "shard": shard})
        jobs.append(spec)
    return jobs


async def _work(stack: Any, feed_of: dict[str, str]) -> None:
    """Claim and finish every ready job stage by stage until none is left to claim (the
    retryable failures come back after their 100 ms backoff and then succeed)."""
    from orchestrator_grpckit import mint_dev_token
    from tests.conftest import DEV_SECRET

    token = mint_dev_token(DEV_SECRET, "demo-worker", [stack.tenant], ["orch:work"], list(STAGES))
    md = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(stack.leases) as channel:
        stub = leases_pb2_grpc.LeaseServiceStub(channel)
        for stage in STAGES:
            while True:
                req = leases_pb2.ClaimRequest(
                    worker_id="demo-worker", job_types=[stage], max_jobs=64
                )
                req.wait.FromMilliseconds(1500)
                got = (await stub.Claim(req, metadata=md)).assignments
                if not got:
                    break
                done, failed = [], []
                for a in got:
                    where = (feed_of[a.source_id], a.key)
                    failure = FAILURES.get(where)
                    if failure and (not failure[1] or a.attempt == 1):
                        error = common_pb2.JobError(
                            error_class=failure[0],
                            message=f"{where[0]} {where[1]}: upstream said no",
                            retryable=failure[1],
                        )
                        failed.append(
                            leases_pb2.Failure(job_id=a.job_id, lease_id=a.lease_id, error=error)
                        )
                    else:
                        done.append(leases_pb2.Completion(job_id=a.job_id, lease_id=a.lease_id))
                if done:
                    await stub.Complete(leases_pb2.CompleteRequest(completions=done), metadata=md)
                if failed:
                    await stub.Fail(leases_pb2.FailRequest(failures=failed), metadata=md)


async def seed(stack: Any, http: Any) -> dict[str, Any]:
    """Sources, runs worked with failures, schedules, quotas and a webhook; returns the
    sources by feed and the runs by feed (run and job ids)."""
    md = (("authorization", f"Bearer {stack.token(('orch:read', 'orch:operate'))}"),)
    suffix = uuid.uuid4().hex[:4]
    sources: dict[str, Any] = {}
    runs: dict[str, Any] = {}
    # A subscription first, so the failures below are delivered (and fail: nothing answers).
    resp = await http.post(
        "/webhooks",
        json={
            "url": "https://siem.example/hooks/orchestrator",
            "event_types": ["job.dead", "run.finished"],
            "description": "SIEM",
        },
    )
    assert resp.status_code == 201, resp.text
    webhook = resp.json()["webhook"]
    async with grpc.aio.insecure_channel(stack.scheduler) as channel:
        stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
        for feed, host in FEEDS:
            source = resources_pb2.Source(
                name=f"{feed}-{suffix}",
                source_type=feed.split("-")[0],
                host=f"{suffix}.{host}",
                base_url=f"https://{suffix}.{host}/",
                enabled=True,
            )
            created = await stub.CreateSource(
                scheduler_pb2.CreateSourceRequest(source=source), metadata=md
            )
            sources[feed] = created.source
            run = await stub.CreateRun(
                scheduler_pb2.CreateRunRequest(
                    name=f"{feed}-pipeline",
                    source_id=created.source.id,
                    project="demo",
                    jobs=_dag(feed, created.source.id),
                ),
                metadata=md,
            )
            assert len(run.jobs) == JOBS_PER_RUN
            runs[feed] = run
    await _work(stack, {s.id: feed for feed, s in sources.items()})

    quota = stack.headers(("orch:read", "orch:quota")) | {"X-Stella-Operator-Reason": "demo"}
    for job_type, caps in (
        (STAGES[0], {"max_active": 48, "max_per_hour": 2000, "burst": 200, "max_queued": 500}),
        (STAGES[2], {"max_active": 24, "max_queued": 200}),
        (STAGES[3], {"max_active": 4, "max_per_hour": 120}),
    ):
        resp = await http.post("/quotas", json={"job_type": job_type, **caps}, headers=quota)
        assert resp.status_code == 201, resp.text
    template = {"name": "poll {fire_time}", "jobs": [{"key": "poll", "job_type": "feed.poll"}]}
    schedules = {}
    for name, cron, feed in (
        ("nvd-hourly", "0 * * * *", "nvd"),
        ("osv-every-minute", "* * * * *", "osv"),
        ("csaf-nightly", "30 2 * * *", "csaf-vendor"),
    ):
        body = {"name": f"{name}-{suffix}", "cron": cron, "source_id": sources[feed].id}
        resp = await http.post("/schedules", json={**body, "run_template": template})
        assert resp.status_code == 201, resp.text
        schedules[name] = resp.json()
    return {"sources": sources, "runs": runs, "schedules": schedules, "webhook": webhook}
