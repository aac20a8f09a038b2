-- Runs: a group of jobs (one DAG instance, one schedule fire, one backfill).

-- name: run_insert
INSERT INTO orchestrator.runs (id, tenant, project, name, source_id, state, correlation_id,
                               idempotency_key, labels, job_total, schedule_id, backfill_id,
                               created_at, updated_at)
VALUES (%(id)s, %(tenant)s, %(project)s, %(name)s, %(source_id)s, 'pending', %(correlation_id)s,
        %(idempotency_key)s, %(labels)s, %(job_total)s, %(schedule_id)s, %(backfill_id)s,
        %(now)s, %(now)s)
RETURNING *;

-- name: run_get
SELECT * FROM orchestrator.runs WHERE tenant = %(tenant)s AND id = %(id)s;

-- name: run_get_for_update
SELECT * FROM orchestrator.runs WHERE tenant = %(tenant)s AND id = %(id)s FOR UPDATE;

-- name: run_get_by_idempotency_key
SELECT * FROM orchestrator.runs WHERE tenant = %(tenant)s AND idempotency_key = %(idempotency_key)s;

-- name: run_list
SELECT * FROM orchestrator.runs
 WHERE tenant = %(tenant)s
   AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s))
   AND (%(source_id)s::uuid IS NULL OR source_id = %(source_id)s)
   AND (%(project)s::text IS NULL OR project = %(project)s)
   AND (%(after_id)s::uuid IS NULL OR id > %(after_id)s)
 ORDER BY id
 LIMIT %(limit)s;

-- name: run_job_counts
SELECT run_id, state, count(*) AS n FROM orchestrator.jobs
 WHERE tenant = %(tenant)s AND run_id = ANY(%(run_ids)s)
 GROUP BY run_id, state;

-- name: run_lock_many
-- Serialises the "is this run finished?" decision of concurrent transactions on one run;
-- taken in id order so two transactions never wait on each other in a cycle. NO KEY UPDATE
-- (what run_refresh_state's UPDATE takes anyway), not UPDATE: rows inserted with a foreign
-- key to the run (artifacts, jobs) hold a KEY SHARE lock on it until their transaction
-- ends, and a completion that recorded artifacts, then waited for a child job locked by
-- a transaction waiting here, deadlocked with it (make chaos found it).
SELECT id FROM orchestrator.runs WHERE id = ANY(%(run_ids)s) ORDER BY id FOR NO KEY UPDATE;

-- name: run_refresh_state
-- Derives each run's state from its jobs (orchestrator_core.states.derive_run_state):
-- open jobs left → running once any job has left the queue; none left → failed if any job
-- is dead, canceled if any is canceled, else succeeded. A finished run that gets open jobs
-- again (an operator retry) is running again. The partial index jobs_run_open
-- answers the common question ("anything still open?") without scanning the run.
UPDATE orchestrator.runs r
   SET state = x.new_state,
       updated_at = %(now)s,
       started_at = coalesce(r.started_at, CASE WHEN x.new_state <> 'pending' THEN %(now)s::timestamptz END),
       finished_at = CASE WHEN x.new_state IN ('succeeded', 'failed', 'canceled') THEN %(now)s::timestamptz END
  FROM (
    SELECT r2.id,
           CASE
             WHEN EXISTS (SELECT 1 FROM orchestrator.jobs j
                           WHERE j.run_id = r2.id AND j.state IN ('pending', 'ready', 'leased')) THEN
               CASE WHEN r2.state IN ('succeeded', 'failed', 'canceled') THEN 'running'
                    WHEN r2.state = 'pending'
                         AND EXISTS (SELECT 1 FROM orchestrator.jobs j
                                      WHERE j.run_id = r2.id AND j.state NOT IN ('pending', 'ready'))
                    THEN 'running' ELSE r2.state END
             WHEN EXISTS (SELECT 1 FROM orchestrator.jobs j WHERE j.run_id = r2.id AND j.state = 'dead') THEN 'failed'
             WHEN EXISTS (SELECT 1 FROM orchestrator.jobs j WHERE j.run_id = r2.id AND j.state = 'canceled') THEN 'canceled'
             WHEN EXISTS (SELECT 1 FROM orchestrator.jobs j WHERE j.run_id = r2.id) THEN 'succeeded'
             ELSE r2.state
           END AS new_state
      FROM orchestrator.runs r2
     WHERE r2.id = ANY(%(run_ids)s)
  ) x
 WHERE r.id = x.id AND r.state IS DISTINCT FROM x.new_state
RETURNING r.id, r.state;

-- name: run_prioritize
-- The priority of every queued job of a run.
UPDATE orchestrator.jobs SET priority = %(priority)s, updated_at = %(now)s
 WHERE tenant = %(tenant)s AND run_id = %(run_id)s AND state IN ('pending', 'ready')
RETURNING id;

-- name: run_add_jobs
UPDATE orchestrator.runs SET job_total = job_total + %(added)s, updated_at = %(now)s
 WHERE id = %(id)s;
