-- 0004: tenant quotas (operator reason and ticket) and submit-time backpressure.
--
-- The operator's reason and ticket of the last change are kept on the quota row (every
-- change is also an audit entry). Backpressure counts a tenant's queued (pending + ready)
-- jobs, in total and per job type, on every submit of a tenant that has a max_queued quota:
-- this partial index holds only queued jobs, so the count is an index-only scan bounded by
-- the queue cap.
ALTER TABLE orchestrator.quotas ADD COLUMN reason text NOT NULL DEFAULT '';
ALTER TABLE orchestrator.quotas ADD COLUMN ticket text NOT NULL DEFAULT '';
CREATE INDEX jobs_tenant_queued_type ON orchestrator.jobs (tenant, job_type)
  WHERE state IN ('pending', 'ready');
