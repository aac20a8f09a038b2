-- The dead-letter queue (rows written by the leasing ledger when a job dies), incidents,
-- artifacts and the overview figures: the operator-facing reads of SchedulerService.

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
   AND (%(after_failed_at)s::timestamptz IS NULL
        OR (d.failed_at, d.id) < (%(after_failed_at)s::timestamptz, %(after_id)s::uuid))
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

-- name: incident_list
SELECT * FROM orchestrator.incidents
 WHERE tenant = %(tenant)s
   AND (%(state)s::text IS NULL OR state = %(state)s)
   AND (%(after_seen_at)s::timestamptz IS NULL
        OR (last_seen_at, id) < (%(after_seen_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY last_seen_at DESC, id DESC
 LIMIT %(limit)s;

-- name: artifact_list
SELECT * FROM orchestrator.artifacts
 WHERE tenant = %(tenant)s
   AND (%(job_id)s::uuid IS NULL OR job_id = %(job_id)s)
   AND (%(run_id)s::uuid IS NULL OR run_id = %(run_id)s)
   AND (%(after_id)s::uuid IS NULL OR id > %(after_id)s)
 ORDER BY id
 LIMIT %(limit)s;

-- name: overview_job_states
SELECT state, count(*) AS count FROM orchestrator.jobs WHERE tenant = %(tenant)s GROUP BY state;

-- name: overview_window
-- Attempt outcomes in [since, now) from the event history.
SELECT count(*) FILTER (WHERE type = 'job.succeeded') AS succeeded,
       count(*) FILTER (WHERE type = 'job.dead') AS dead,
       count(*) FILTER (WHERE type = 'job.retrying' OR (type = 'job.dead' AND from_state = 'leased'))
         AS failed_attempts
  FROM orchestrator.events
 WHERE tenant = %(tenant)s AND occurred_at >= %(since)s
   AND type IN ('job.succeeded', 'job.dead', 'job.retrying');

-- name: overview_counts
SELECT (SELECT count(*) FROM orchestrator.dead_letter
         WHERE tenant = %(tenant)s AND status = 'pending') AS dead_letter_pending,
       (SELECT count(*) FROM orchestrator.runs
         WHERE tenant = %(tenant)s AND state IN ('pending', 'running')) AS active_runs,
       (SELECT coalesce(max(seq), 0) FROM orchestrator.events
         WHERE tenant = %(tenant)s) AS head_seq;
