-- Leasing: the hot path. Claims, completions and failures are set-based (one statement per
-- batch); every write on a lease is fenced by (id, lease_id, state = 'leased').

-- name: job_claim_batch
-- Highest priority first, then oldest; SKIP LOCKED lets any number of claimers run at once.
WITH picked AS (
  SELECT id FROM orchestrator.jobs
   WHERE state = 'ready'
     AND job_type = ANY(%(job_types)s)
     AND not_before <= %(now)s
     AND (%(tenants)s::text[] IS NULL OR tenant = ANY(%(tenants)s))
   ORDER BY priority DESC, id
   LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED
)
UPDATE orchestrator.jobs j
   SET state = 'leased', reason = 'leased', attempt = j.attempt + 1,
       lease_id = gen_random_uuid(), worker_id = %(worker_id)s, leased_at = %(now)s,
       lease_expires_at = %(now)s + make_interval(secs => %(lease_ttl_s)s),
       last_heartbeat_at = NULL, started_at = coalesce(j.started_at, %(now)s),
       updated_at = %(now)s
  FROM picked
 WHERE j.id = picked.id
RETURNING j.*;

-- name: job_complete_many
UPDATE orchestrator.jobs j
   SET state = 'succeeded', reason = 'completed', result = c.result,
       result_digest = nullif(c.result_digest, ''), finished_at = %(now)s, updated_at = %(now)s
  FROM unnest(%(ids)s::uuid[], %(lease_ids)s::uuid[], %(results)s::jsonb[],
              %(result_digests)s::text[]) AS c(id, lease_id, result, result_digest)
 WHERE j.id = c.id AND j.lease_id = c.lease_id AND j.state = 'leased'
   AND (%(tenants)s::text[] IS NULL OR j.tenant = ANY(%(tenants)s))
RETURNING j.id, j.run_id;

-- name: job_lease_status_many
-- Why a write on a lease did not apply: the job's current state and lease.
SELECT id, tenant, state, lease_id, result_digest FROM orchestrator.jobs
 WHERE id = ANY(%(ids)s)
   AND (%(tenants)s::text[] IS NULL OR tenant = ANY(%(tenants)s));

-- name: job_leased_for_update
-- The leased jobs named by (id, lease_id) pairs, locked, for a failure decision.
SELECT j.* FROM orchestrator.jobs j
  JOIN unnest(%(ids)s::uuid[], %(lease_ids)s::uuid[]) AS f(id, lease_id)
    ON j.id = f.id AND j.lease_id = f.lease_id
 WHERE j.state = 'leased'
   AND (%(tenants)s::text[] IS NULL OR j.tenant = ANY(%(tenants)s))
 ORDER BY j.id
 FOR UPDATE OF j;

-- name: job_expired_for_update
-- Leases past their expiry (watchdog); SKIP LOCKED so a worker finishing right now wins.
SELECT * FROM orchestrator.jobs
 WHERE state = 'leased' AND lease_expires_at < %(now)s
 ORDER BY lease_expires_at, id
 LIMIT %(limit)s
 FOR UPDATE SKIP LOCKED;

-- name: job_fail_many
-- Applies failure decisions made in Python (retry with backoff, or dead).
UPDATE orchestrator.jobs j
   SET state = f.state, reason = f.reason, not_before = coalesce(f.not_before, j.not_before),
       last_error_class = f.error_class, last_error_message = f.error_message,
       last_error_retryable = f.retryable,
       finished_at = CASE WHEN f.state = 'dead' THEN %(now)s::timestamptz END,
       updated_at = %(now)s
  FROM unnest(%(ids)s::uuid[], %(states)s::text[], %(reasons)s::text[],
              %(not_befores)s::timestamptz[], %(error_classes)s::text[],
              %(error_messages)s::text[], %(retryables)s::boolean[])
       AS f(id, state, reason, not_before, error_class, error_message, retryable)
 WHERE j.id = f.id AND j.state = 'leased'
RETURNING j.id, j.run_id, j.state;

-- name: dead_letter_insert_many
INSERT INTO orchestrator.dead_letter (id, tenant, job_id, job_type, source_id, run_id,
                                      error_class, last_error, attempts, retryable, failed_at)
SELECT gen_random_uuid(), j.tenant, j.id, j.job_type, j.source_id, j.run_id,
       coalesce(j.last_error_class, 'other'), coalesce(j.last_error_message, ''), j.attempt,
       coalesce(j.last_error_retryable, false), %(now)s
  FROM orchestrator.jobs j
 WHERE j.id = ANY(%(ids)s) AND j.state = 'dead';
