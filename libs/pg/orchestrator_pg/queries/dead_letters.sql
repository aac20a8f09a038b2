-- The dead-letter queue: jobs out of attempts (written by the hot path when a job dies),
-- the operator's reads, and the replay mark of an operator retry (or a run resume).

-- name: dead_letter_mark_replayed
UPDATE orchestrator.dead_letter
   SET status = 'replayed', resolved_by = %(actor)s, resolution_reason = %(reason)s,
       resolved_at = %(now)s
 WHERE tenant = %(tenant)s AND job_id = ANY(%(job_ids)s) AND status = 'pending';

-- name: dead_letter_list
-- Newest first; the cursor is (failed_at, id) of the last row of the previous page.
SELECT d.*, j.reason AS job_reason
  FROM orchestrator.dead_letter d
  JOIN orchestrator.jobs j ON j.id = d.job_id
 WHERE d.tenant = %(tenant)s
   AND (%(status)s::text IS NULL OR d.status = %(status)s)
   AND (%(error_class)s::text IS NULL OR d.error_class = %(error_class)s)
   AND (%(job_type)s::text IS NULL OR d.job_type = %(job_type)s)
   AND (%(source_id)s::uuid IS NULL OR d.source_id = %(source_id)s)
   AND (%(retryable)s::boolean IS NULL OR d.retryable = %(retryable)s)
   AND (%(after_at)s::timestamptz IS NULL
        OR (d.failed_at, d.id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY d.failed_at DESC, d.id DESC
 LIMIT %(limit)s;

-- name: dead_letter_get
SELECT d.*, j.reason AS job_reason
  FROM orchestrator.dead_letter d
  JOIN orchestrator.jobs j ON j.id = d.job_id
 WHERE d.tenant = %(tenant)s AND d.id = %(id)s;

-- name: dead_letter_clusters
SELECT d.error_class, d.job_type, d.source_id, count(*) AS count,
       count(*) FILTER (WHERE d.retryable) AS retryable_count,
       min(d.failed_at) AS first_failed_at, max(d.failed_at) AS last_failed_at,
       left(mode() WITHIN GROUP (ORDER BY d.last_error), 200) AS sample_message
  FROM orchestrator.dead_letter d
 WHERE d.tenant = %(tenant)s AND d.status = %(status)s
 GROUP BY d.error_class, d.job_type, d.source_id
 ORDER BY count(*) DESC, d.error_class, d.job_type, d.source_id NULLS FIRST;

-- name: dead_letter_insert_many
INSERT INTO orchestrator.dead_letter (id, tenant, job_id, job_type, source_id, run_id,
                                      error_class, last_error, attempts, retryable, failed_at)
SELECT gen_random_uuid(), j.tenant, j.id, j.job_type, j.source_id, j.run_id,
       coalesce(j.last_error_class, 'other'), coalesce(j.last_error_message, ''), j.attempt,
       coalesce(j.last_error_retryable, false), %(now)s
  FROM orchestrator.jobs j
 WHERE j.id = ANY(%(ids)s) AND j.state = 'dead';
