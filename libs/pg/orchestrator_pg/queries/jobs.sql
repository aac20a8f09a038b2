-- Jobs: the ledger's hot table. State changes here write their events through the
-- jobs_outbox triggers (migrations/0001_ledger.sql), so no query below inserts events itself.
-- The hot path (claims, completions, failures) is in leases.sql.

-- name: job_insert_many
-- One statement for a whole batch (a run's DAG or a SubmitJobs call). Rows whose
-- idempotency key already exists for the tenant are skipped; the caller reads them back.
INSERT INTO orchestrator.jobs (
    id, tenant, project, run_id, source_id, job_type, key, state, reason, priority,
    idempotency_key, correlation_id, payload, payload_digest, pending_parents,
    max_attempts, initial_backoff_s, max_backoff_s, backoff_multiplier, not_before,
    event_window_start, event_window_end, replay_of, trace_parent, trace_state, labels,
    created_at, updated_at)
SELECT t.id, %(tenant)s, t.project, t.run_id, t.source_id, t.job_type, t.key, t.state, t.reason,
       t.priority, t.idempotency_key, t.correlation_id, t.payload, t.payload_digest,
       t.pending_parents, t.max_attempts, t.initial_backoff_s, t.max_backoff_s,
       t.backoff_multiplier, coalesce(t.not_before, %(now)s), t.event_window_start,
       t.event_window_end, t.replay_of, t.trace_parent, t.trace_state, t.labels, %(now)s, %(now)s
  FROM unnest(%(id)s::uuid[], %(project)s::text[], %(run_id)s::uuid[], %(source_id)s::uuid[],
              %(job_type)s::text[], %(key)s::text[], %(state)s::text[], %(reason)s::text[],
              %(priority)s::int[], %(idempotency_key)s::text[], %(correlation_id)s::text[],
              %(payload)s::jsonb[], %(payload_digest)s::text[], %(pending_parents)s::int[],
              %(max_attempts)s::int[], %(initial_backoff_s)s::float8[], %(max_backoff_s)s::float8[],
              %(backoff_multiplier)s::float8[], %(not_before)s::timestamptz[],
              %(event_window_start)s::timestamptz[], %(event_window_end)s::timestamptz[],
              %(replay_of)s::uuid[], %(trace_parent)s::text[], %(trace_state)s::text[],
              %(labels)s::jsonb[])
       AS t(id, project, run_id, source_id, job_type, key, state, reason, priority,
            idempotency_key, correlation_id, payload, payload_digest, pending_parents,
            max_attempts, initial_backoff_s, max_backoff_s, backoff_multiplier, not_before,
            event_window_start, event_window_end, replay_of, trace_parent, trace_state, labels)
 ORDER BY t.id
ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *;

-- name: job_get
SELECT * FROM orchestrator.jobs WHERE tenant = %(tenant)s AND id = %(id)s;

-- name: job_get_for_update
SELECT * FROM orchestrator.jobs WHERE tenant = %(tenant)s AND id = %(id)s FOR UPDATE;

-- name: job_get_many
SELECT * FROM orchestrator.jobs WHERE tenant = %(tenant)s AND id = ANY(%(ids)s) ORDER BY id;

-- name: job_get_by_idempotency_keys
SELECT * FROM orchestrator.jobs
 WHERE tenant = %(tenant)s AND idempotency_key = ANY(%(keys)s);

-- name: job_states_for_share
-- Locks existing parents of new jobs so a parent cannot finish between this read and the
-- edge insert (its completion would otherwise miss the new child).
SELECT id, state FROM orchestrator.jobs
 WHERE tenant = %(tenant)s AND id = ANY(%(ids)s)
 ORDER BY id FOR SHARE;

-- name: job_list
SELECT * FROM orchestrator.jobs
 WHERE tenant = %(tenant)s
   AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s))
   AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
   AND (%(run_id)s::uuid IS NULL OR run_id = %(run_id)s)
   AND (%(source_id)s::uuid IS NULL OR source_id = %(source_id)s)
   AND (%(after_id)s::uuid IS NULL OR id > %(after_id)s)
 ORDER BY id
 LIMIT %(limit)s;

-- name: job_list_for_run
SELECT * FROM orchestrator.jobs WHERE tenant = %(tenant)s AND run_id = %(run_id)s ORDER BY id;

-- name: job_cancel_many
-- Operator cancel: every listed job that is still open ends canceled. The lease id stays on
-- the row so a late Complete from the worker is fenced off as lease_lost.
UPDATE orchestrator.jobs
   SET state = 'canceled', reason = %(reason)s, finished_at = %(now)s, updated_at = %(now)s
 WHERE tenant = %(tenant)s AND id = ANY(%(ids)s) AND state IN ('pending', 'ready', 'leased')
RETURNING id, run_id;

-- name: job_cancel_open_in_run
UPDATE orchestrator.jobs
   SET state = 'canceled', reason = %(reason)s, finished_at = %(now)s, updated_at = %(now)s
 WHERE tenant = %(tenant)s AND run_id = %(run_id)s AND state IN ('pending', 'ready', 'leased')
RETURNING id, run_id;

-- name: job_cancel_descendants
-- Cascade: every job downstream of a dead or canceled job can never run, so the pending
-- ones (only pending ones can be downstream of an unfinished parent) end canceled.
-- Locked in id order first, like job_release_children (two cascades sharing descendants),
-- and found through the primary key only, for the same reason (`|| ''`: no partial index).
WITH RECURSIVE downstream(id) AS (
    SELECT e.child_job_id FROM orchestrator.dag_edges e WHERE e.parent_job_id = ANY(%(ids)s)
  UNION
    SELECT e.child_job_id FROM orchestrator.dag_edges e JOIN downstream d ON e.parent_job_id = d.id
), locked AS MATERIALIZED (
  SELECT j.id FROM orchestrator.jobs j
   WHERE j.id IN (SELECT id FROM downstream) AND j.state || '' = 'pending'
   ORDER BY j.id
     FOR UPDATE
)
UPDATE orchestrator.jobs j
   SET state = 'canceled', reason = 'upstream_failed', finished_at = %(now)s, updated_at = %(now)s
  FROM locked l
 WHERE j.id = l.id AND j.state || '' = 'pending'
RETURNING j.id, j.run_id;

-- name: job_release_children
-- Readiness: each succeeded parent takes one off its pending children's counters; a child
-- reaching zero turns ready. Runs as its own statement after the parents' update so its
-- snapshot sees children that were added while the parents were locked. The children are
-- locked in id order first: two replicas completing parents of shared children (fan-in)
-- would otherwise lock them in whatever order their plans meet them (heap order for a
-- sequential scan) and could deadlock.
-- The children are found through the primary key only: the state test is written
-- `j.state || '' = 'pending'` so that no partial index on state (jobs_tenant_queued_type
-- holds every pending AND ready job) can serve it. On a table whose statistics predate a
-- backlog (a million finished jobs, then a 100,000-job backfill: below autoanalyze's tenth)
-- the planner believed that index empty and scanned all of it for every completion batch,
-- removing the ready jobs one by one: 17-26 ms a call, ~110 us of PostgreSQL per job in
-- the old-table burn-down, for jobs that have no children at all.
WITH released AS (
  SELECT e.child_job_id AS id, count(*)::int AS n
    FROM orchestrator.dag_edges e
   WHERE e.parent_job_id = ANY(%(ids)s)
   GROUP BY e.child_job_id
), locked AS MATERIALIZED (
  SELECT j.id FROM orchestrator.jobs j
   WHERE j.id IN (SELECT id FROM released) AND j.state || '' = 'pending'
   ORDER BY j.id
     FOR UPDATE
)
UPDATE orchestrator.jobs j
   SET pending_parents = j.pending_parents - r.n,
       state = CASE WHEN j.pending_parents - r.n = 0 THEN 'ready' ELSE j.state END,
       reason = CASE WHEN j.pending_parents - r.n = 0 THEN 'dependencies_met' ELSE j.reason END,
       not_before = CASE WHEN j.pending_parents - r.n = 0 THEN greatest(j.not_before, %(now)s) ELSE j.not_before END,
       updated_at = %(now)s
  FROM released r JOIN locked l ON l.id = r.id
 WHERE j.id = r.id AND j.state || '' = 'pending'
RETURNING j.id, j.state, j.run_id;

-- name: job_retry
-- Operator retry of a dead job: back to ready now, with room for one more attempt when its
-- attempts are used up.
UPDATE orchestrator.jobs
   SET state = 'ready', reason = 'operator_retry', not_before = %(now)s,
       max_attempts = greatest(max_attempts, least(attempt + 1, 100)),
       lease_id = NULL, worker_id = NULL, lease_expires_at = NULL, updated_at = %(now)s,
       finished_at = NULL
 WHERE tenant = %(tenant)s AND id = %(id)s AND state = 'dead'
RETURNING id, run_id;

-- name: job_ids_by_keys_in_run
SELECT key, id, state FROM orchestrator.jobs
 WHERE tenant = %(tenant)s AND run_id = %(run_id)s AND key = ANY(%(keys)s);

-- name: job_get_by_idempotency_keys_for_share
-- Jobs an incoming batch would duplicate; locked so they cannot finish before the batch's
-- children are linked to them.
SELECT id, state, idempotency_key FROM orchestrator.jobs
 WHERE tenant = %(tenant)s AND idempotency_key = ANY(%(keys)s)
 ORDER BY id FOR SHARE;

-- name: job_queued_counts
-- Queued (pending + ready) jobs of the tenant: one row per job type plus the total
-- (is_total); an index-only scan of jobs_tenant_queued_type.
SELECT job_type, grouping(job_type) = 1 AS is_total, count(*) AS n
  FROM orchestrator.jobs
 WHERE tenant = %(tenant)s AND state IN ('pending', 'ready')
 GROUP BY GROUPING SETS ((), (job_type));

-- name: job_prioritize
-- A queued job's priority (leased and finished jobs keep theirs).
UPDATE orchestrator.jobs SET priority = %(priority)s, updated_at = %(now)s
 WHERE tenant = %(tenant)s AND id = %(id)s AND state IN ('pending', 'ready')
RETURNING id;

-- name: job_count_by_state
SELECT state, count(*) AS count FROM orchestrator.jobs WHERE tenant = %(tenant)s GROUP BY state;

-- name: job_lock_for_run
-- A run resume's view of the run: every job, locked in id order (the lock order of every
-- writer: jobs in id order, then the run), so a concurrent resume waits and then finds the
-- run running.
SELECT id, state, reason FROM orchestrator.jobs
 WHERE tenant = %(tenant)s AND run_id = %(run_id)s
 ORDER BY id FOR UPDATE;

-- name: job_resume_dead_many
-- A run resume re-runs its dead jobs: back to ready now with a renewed attempt budget. The
-- attempt counter keeps counting (it keys each attempt's events and lease records), so the
-- budget grows instead: max_attempts more attempts than used so far, capped at 100.
UPDATE orchestrator.jobs
   SET state = 'ready', reason = 'run_resumed', not_before = %(now)s,
       max_attempts = least(attempt + max_attempts, 100),
       lease_id = NULL, worker_id = NULL, lease_expires_at = NULL, updated_at = %(now)s,
       finished_at = NULL
 WHERE tenant = %(tenant)s AND id = ANY(%(ids)s) AND state = 'dead'
RETURNING id;

-- name: job_revive_many
-- A run resume revives the jobs its dead jobs' failure canceled (upstream_failed): ready
-- when every parent has succeeded, else pending on the parents that have not
-- (pending_parents, which job_release_children counts down as they succeed).
UPDATE orchestrator.jobs j
   SET state = CASE WHEN t.pending_parents = 0 THEN 'ready' ELSE 'pending' END,
       reason = 'run_resumed', pending_parents = t.pending_parents,
       not_before = greatest(j.not_before, %(now)s), finished_at = NULL, updated_at = %(now)s
  FROM unnest(%(ids)s::uuid[], %(pending_parents)s::int[]) AS t(id, pending_parents)
 WHERE j.tenant = %(tenant)s AND j.id = t.id AND j.state = 'canceled'
   AND j.reason = 'upstream_failed'
RETURNING j.id, j.state;

-- name: job_search
-- The Console's job list: job_list's filters plus the last error class and a time range, in
-- id order. The range applies to the job's creation or, with %(failed_in_range)s, to its
-- failed attempts (a retry, or the death of a leased job, as in event_count_outcomes).
SELECT j.id, j.key, j.job_type, j.state, j.reason, j.run_id, j.source_id, j.attempt,
       j.max_attempts, j.priority, j.last_error_class, j.last_error_message, j.created_at,
       j.updated_at, j.finished_at
  FROM orchestrator.jobs j
 WHERE j.tenant = %(tenant)s
   AND (%(states)s::text[] IS NULL OR j.state = ANY(%(states)s))
   AND (%(job_type)s::text IS NULL OR j.job_type = %(job_type)s)
   AND (%(source_id)s::uuid IS NULL OR j.source_id = %(source_id)s)
   AND (%(error_class)s::text IS NULL OR j.last_error_class = %(error_class)s)
   AND (%(failed_in_range)s
        OR ((%(since)s::timestamptz IS NULL OR j.created_at >= %(since)s)
            AND (%(until)s::timestamptz IS NULL OR j.created_at < %(until)s)))
   AND (NOT %(failed_in_range)s OR EXISTS (
         SELECT 1 FROM orchestrator.events e
          WHERE e.job_id = j.id AND e.tenant = %(tenant)s
            AND (e.type = 'job.retrying' OR (e.type = 'job.dead' AND e.from_state = 'leased'))
            AND (%(since)s::timestamptz IS NULL OR e.occurred_at >= %(since)s)
            AND (%(until)s::timestamptz IS NULL OR e.occurred_at < %(until)s)))
   AND (%(after_id)s::uuid IS NULL OR j.id > %(after_id)s)
 ORDER BY j.id
 LIMIT %(limit)s;

-- name: job_of_tenant
SELECT EXISTS (SELECT 1 FROM orchestrator.jobs
                WHERE tenant = %(tenant)s AND id = %(id)s) AS mine;
