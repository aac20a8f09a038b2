-- The claim probes one tenant and job type at a time (job_claim_admitted), so the only index
-- it should walk is jobs_claimable_tenant (tenant, job_type, priority DESC, id). The older
-- jobs_claimable (job_type, priority DESC, id) let the planner pick it for a probe whenever
-- the tenant column's statistics made the tenant filter look unselective (one tenant holding
-- the whole backlog): the probe of any other tenant then walked every ready job of the type
-- to find none of its own. Measured with 1,000,000 ready jobs of one tenant: 150-380 ms per
-- probe, ~400,000 buffers per claim, against 0.05 ms with the tenant-leading index
-- (docs/benchmarks.md, "Claim cost"). Dropping it also takes one index off every insert and
-- every transition into 'ready'.
DROP INDEX orchestrator.jobs_claimable;
