-- Backfills: re-processing a past event-time range of a source in windows, one job each.

-- name: backfill_lock
-- Serialises the backfills of one {tenant, source, job type} (overlap check, then insert).
SELECT pg_advisory_xact_lock(hashtextextended(%(lock)s, 0));

-- name: backfill_list_overlapping
-- Active backfills (their run unfinished) of the key whose range overlaps [start, end).
SELECT b.* FROM orchestrator.backfills b
  LEFT JOIN orchestrator.runs r ON r.id = b.run_id
 WHERE b.tenant = %(tenant)s AND b.source_id = %(source_id)s AND b.job_type = %(job_type)s
   AND b.state IN ('planned', 'running')
   AND (r.id IS NULL OR r.state IN ('pending', 'running'))
   AND b.range_start < %(end)s AND b.range_end > %(start)s
 ORDER BY b.range_start, b.id;

-- name: backfill_covered_windows
-- Which of the candidate windows are already covered: a job of the key whose event window
-- contains the candidate window and that succeeded or is still queued or running (a
-- window that failed, died or was canceled is backfilled again).
SELECT w.i FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[])
                WITH ORDINALITY AS w(start_at, end_at, i)
 WHERE EXISTS (
   SELECT 1 FROM orchestrator.jobs j
    WHERE j.tenant = %(tenant)s AND j.source_id = %(source_id)s AND j.job_type = %(job_type)s
      AND j.event_window_start IS NOT NULL
      AND j.event_window_start <= w.start_at AND j.event_window_end >= w.end_at
      AND j.state IN ('succeeded', 'pending', 'ready', 'leased'));

-- name: backfill_insert
INSERT INTO orchestrator.backfills (id, tenant, source_id, job_type, range_start, range_end,
                                    window_size, priority, state, reason, ticket, run_id,
                                    window_count, suppressed_window_count, created_by,
                                    created_at, updated_at)
VALUES (%(id)s, %(tenant)s, %(source_id)s, %(job_type)s, %(range_start)s, %(range_end)s,
        %(window_size)s, %(priority)s, %(state)s, %(reason)s, %(ticket)s, NULL,
        %(window_count)s, %(suppressed_window_count)s, %(created_by)s, %(now)s, %(now)s)
RETURNING *;

-- name: backfill_set_run
UPDATE orchestrator.backfills SET run_id = %(run_id)s WHERE id = %(id)s;

-- name: backfill_get
-- A backfill with its progress (window jobs by state) and its run's state.
SELECT b.*, r.state AS run_state,
       count(j.id) FILTER (WHERE j.state = 'succeeded') AS succeeded_jobs,
       count(j.id) FILTER (WHERE j.state = 'dead') AS dead_jobs,
       count(j.id) FILTER (WHERE j.state = 'canceled') AS canceled_jobs,
       count(j.id) FILTER (WHERE j.attempt > 0) AS started_jobs,
       count(j.id) AS jobs
  FROM orchestrator.backfills b
  LEFT JOIN orchestrator.runs r ON r.id = b.run_id
  LEFT JOIN orchestrator.jobs j ON j.run_id = b.run_id
 WHERE b.tenant = %(tenant)s AND b.id = %(id)s
 GROUP BY b.id, r.state;

-- name: backfill_list
SELECT b.id FROM orchestrator.backfills b
 WHERE b.tenant = %(tenant)s
   AND (%(source_id)s::uuid IS NULL OR b.source_id = %(source_id)s)
   AND (%(after_id)s::uuid IS NULL OR b.id > %(after_id)s)
 ORDER BY b.id
 LIMIT %(limit)s;

-- name: backfill_set_state
UPDATE orchestrator.backfills SET state = %(state)s, updated_at = %(now)s
 WHERE tenant = %(tenant)s AND id = %(id)s
RETURNING *;

-- name: backfill_queue_room
-- The queue caps (max_queued) that apply to the key's jobs, with the queued count now; and
-- the hourly quota (dry-run estimates).
SELECT q.job_type, q.max_queued, q.max_per_hour,
       (SELECT count(*) FROM orchestrator.jobs j
         WHERE j.tenant = q.tenant AND j.state IN ('pending', 'ready')
           AND (q.job_type = '' OR j.job_type = q.job_type)) AS queued
  FROM orchestrator.quotas q
 WHERE q.tenant = %(tenant)s AND (q.job_type = '' OR q.job_type = %(job_type)s)
   AND (q.max_queued > 0 OR q.max_per_hour > 0)
 ORDER BY q.job_type;
