-- Operator controls: pausing jobs of a tenant or job type, priorities, replays.

-- name: jobs_pause_upsert
-- Pausing the tenant's jobs (job_type '') or one job type's is the paused flag of that quota
-- row (created without limits when missing); the claim leaves paused jobs ready.
INSERT INTO orchestrator.quotas (id, tenant, job_type, paused, reason, ticket, created_at,
                                 updated_at)
VALUES (%(id)s, %(tenant)s, %(job_type)s, %(paused)s, %(reason)s, %(ticket)s, %(now)s, %(now)s)
ON CONFLICT (tenant, job_type) DO UPDATE
   SET paused = excluded.paused, reason = excluded.reason, ticket = excluded.ticket,
       updated_at = excluded.updated_at
RETURNING *;

-- name: job_prioritize
-- A queued job's priority (leased and finished jobs keep theirs).
UPDATE orchestrator.jobs SET priority = %(priority)s, updated_at = %(now)s
 WHERE tenant = %(tenant)s AND id = %(id)s AND state IN ('pending', 'ready')
RETURNING id;

-- name: run_prioritize
-- The priority of every queued job of a run.
UPDATE orchestrator.jobs SET priority = %(priority)s, updated_at = %(now)s
 WHERE tenant = %(tenant)s AND run_id = %(run_id)s AND state IN ('pending', 'ready')
RETURNING id;
