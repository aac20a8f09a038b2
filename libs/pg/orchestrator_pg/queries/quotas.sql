-- Tenant quotas (job_type '' = the whole tenant), the pause flags they carry, and the
-- hourly spend of claims.

-- name: quota_create
INSERT INTO orchestrator.quotas (id, tenant, job_type, max_active, max_per_hour, burst,
                                 max_queued, paused, reason, ticket, created_at, updated_at)
VALUES (%(id)s, %(tenant)s, %(job_type)s, %(max_active)s, %(max_per_hour)s, %(burst)s,
        %(max_queued)s, %(paused)s, %(reason)s, %(ticket)s, %(now)s, %(now)s)
RETURNING *;

-- name: quota_get
SELECT * FROM orchestrator.quotas WHERE tenant = %(tenant)s AND id = %(id)s;

-- name: quota_list
SELECT * FROM orchestrator.quotas
 WHERE tenant = %(tenant)s
   AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
   AND (%(paused)s::boolean IS NULL OR paused = %(paused)s)
   AND (%(after_id)s::uuid IS NULL OR id > %(after_id)s)
 ORDER BY id
 LIMIT %(limit)s;

-- name: quota_update
-- Only the fields named in %(mask)s change; reason and ticket always record this change.
UPDATE orchestrator.quotas SET
       max_active   = CASE WHEN 'max_active' = ANY(%(mask)s) THEN %(max_active)s ELSE max_active END,
       max_per_hour = CASE WHEN 'max_per_hour' = ANY(%(mask)s) THEN %(max_per_hour)s ELSE max_per_hour END,
       burst        = CASE WHEN 'burst' = ANY(%(mask)s) THEN %(burst)s ELSE burst END,
       max_queued   = CASE WHEN 'max_queued' = ANY(%(mask)s) THEN %(max_queued)s ELSE max_queued END,
       paused       = CASE WHEN 'paused' = ANY(%(mask)s) THEN %(paused)s ELSE paused END,
       reason       = %(reason)s,
       ticket       = %(ticket)s,
       updated_at   = %(now)s
 WHERE tenant = %(tenant)s AND id = %(id)s
RETURNING *;

-- name: quota_delete
DELETE FROM orchestrator.quotas WHERE tenant = %(tenant)s AND id = %(id)s RETURNING id;

-- name: quota_queue_caps
-- The max_queued caps that apply to a submit: the whole-tenant one and those of the job types.
SELECT job_type, max_queued FROM orchestrator.quotas
 WHERE tenant = %(tenant)s AND max_queued > 0
   AND (job_type = '' OR job_type = ANY(%(job_types)s));

-- name: quota_tenant_lock
-- Serialises the submits of one tenant that has a queue cap (count, then insert).
SELECT pg_advisory_xact_lock(hashtext(%(tenant)s));

-- name: quota_pause_upsert
-- Pausing the tenant's jobs (job_type '') or one job type's is the paused flag of that quota
-- row (created without limits when missing); the claim leaves paused jobs ready.
INSERT INTO orchestrator.quotas (id, tenant, job_type, paused, reason, ticket, created_at,
                                 updated_at)
VALUES (%(id)s, %(tenant)s, %(job_type)s, %(paused)s, %(reason)s, %(ticket)s, %(now)s, %(now)s)
ON CONFLICT (tenant, job_type) DO UPDATE
   SET paused = excluded.paused, reason = excluded.reason, ticket = excluded.ticket,
       updated_at = excluded.updated_at
RETURNING *;

-- name: quota_spend
-- Hourly quota tokens spent by the jobs leased in phase two of a claim (those that first
-- waited for rate-limit tokens); phase one's spend happens inside job_claim_admitted.
-- Runs under the same tenant advisory locks (job_claim_caps_lock).
INSERT INTO orchestrator.quota_usage (quota_id, tenant, tokens, updated_at)
SELECT q.id, q.tenant,
       orchestrator.quota_tokens(q.max_per_hour, q.burst, u.tokens, u.updated_at, %(now)s)
         - count(*),
       %(now)s
  FROM orchestrator.quotas q
  LEFT JOIN orchestrator.quota_usage u ON u.quota_id = q.id
  JOIN unnest(%(tenants)s::text[], %(job_types)s::text[]) AS l(tenant, job_type)
    ON l.tenant = q.tenant AND (q.job_type = '' OR l.job_type = q.job_type)
 WHERE q.max_per_hour > 0
 GROUP BY q.id, q.tenant, q.max_per_hour, q.burst, u.tokens, u.updated_at
ON CONFLICT (quota_id) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at;

-- name: quota_usage_list
-- Each quota's usage now, counted as the claim counts it (job_claim_admitted's quota CTE):
-- leased jobs against max_active, pending + ready against max_queued, and the hourly
-- bucket's tokens left against max_per_hour (NULL without an hourly cap).
SELECT q.id AS quota_id, q.job_type,
       (SELECT count(*) FROM orchestrator.jobs a
         WHERE a.tenant = q.tenant AND a.state = 'leased'
           AND (q.job_type = '' OR a.job_type = q.job_type)) AS active,
       (SELECT count(*) FROM orchestrator.jobs a
         WHERE a.tenant = q.tenant AND a.state IN ('pending', 'ready')
           AND (q.job_type = '' OR a.job_type = q.job_type)) AS queued,
       CASE WHEN q.max_per_hour > 0
            THEN orchestrator.quota_tokens(q.max_per_hour, q.burst, u.tokens, u.updated_at,
                                           %(now)s) END AS hourly_tokens_left
  FROM orchestrator.quotas q
  LEFT JOIN orchestrator.quota_usage u ON u.quota_id = q.id
 WHERE q.tenant = %(tenant)s
 ORDER BY q.id;
