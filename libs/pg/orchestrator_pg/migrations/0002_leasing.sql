-- 0002: the fair claim path of the leases service.
--
-- Claims walk each tenant's ready jobs of each job type in priority order (one LATERAL
-- probe per tenant and type, so one tenant's backlog cannot starve another); this index
-- answers each probe with an ordered index scan that stops after the per-tenant limit.
CREATE INDEX jobs_claimable_tenant ON orchestrator.jobs (tenant, job_type, priority DESC, id)
  WHERE state = 'ready';
