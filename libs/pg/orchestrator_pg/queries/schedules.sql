-- Cron schedules: CRUD, and what the leader's firing pass reads and writes.

-- name: schedule_create
INSERT INTO orchestrator.schedules (id, tenant, name, cron, source_id, run_template, catch_up,
                                    catch_up_window, overlap, enabled, next_fire_at,
                                    created_at, updated_at)
VALUES (%(id)s, %(tenant)s, %(name)s, %(cron)s, %(source_id)s, %(run_template)s, %(catch_up)s,
        %(catch_up_window)s, %(overlap)s, %(enabled)s, %(next_fire_at)s, %(now)s, %(now)s)
RETURNING *;

-- name: schedule_get
SELECT * FROM orchestrator.schedules WHERE tenant = %(tenant)s AND id = %(id)s;

-- name: schedule_list
SELECT * FROM orchestrator.schedules
 WHERE tenant = %(tenant)s
   AND (%(enabled)s::boolean IS NULL OR enabled = %(enabled)s)
   AND (%(after_id)s::uuid IS NULL OR id > %(after_id)s)
 ORDER BY id
 LIMIT %(limit)s;

-- name: schedule_update
-- Only the fields named in %(mask)s change; a new cron or re-enabling sets next_fire_at
-- (computed by the caller from %(now)s).
UPDATE orchestrator.schedules SET
       name            = CASE WHEN 'name' = ANY(%(mask)s) THEN %(name)s ELSE name END,
       cron            = CASE WHEN 'cron' = ANY(%(mask)s) THEN %(cron)s ELSE cron END,
       source_id       = CASE WHEN 'source_id' = ANY(%(mask)s) THEN %(source_id)s ELSE source_id END,
       run_template    = CASE WHEN 'run_template' = ANY(%(mask)s) THEN %(run_template)s ELSE run_template END,
       catch_up        = CASE WHEN 'catch_up' = ANY(%(mask)s) THEN %(catch_up)s ELSE catch_up END,
       catch_up_window = CASE WHEN 'catch_up_window' = ANY(%(mask)s) THEN %(catch_up_window)s ELSE catch_up_window END,
       overlap         = CASE WHEN 'overlap' = ANY(%(mask)s) THEN %(overlap)s ELSE overlap END,
       enabled         = CASE WHEN 'enabled' = ANY(%(mask)s) THEN %(enabled)s ELSE enabled END,
       next_fire_at    = CASE WHEN %(next_fire_at)s::timestamptz IS NOT NULL THEN %(next_fire_at)s
                              ELSE next_fire_at END,
       updated_at      = %(now)s
 WHERE tenant = %(tenant)s AND id = %(id)s
RETURNING *;

-- name: schedule_delete
DELETE FROM orchestrator.schedules WHERE tenant = %(tenant)s AND id = %(id)s RETURNING id;

-- name: schedule_due
-- The enabled schedules whose next fire time has come (every tenant: the firing pass is the
-- leader's), plus those holding a buffered fire time; locked so a second firer skips them.
SELECT * FROM orchestrator.schedules
 WHERE enabled AND (next_fire_at <= %(now)s OR buffered_fire_at IS NOT NULL)
 ORDER BY next_fire_at NULLS LAST, id
 LIMIT %(limit)s
 FOR UPDATE SKIP LOCKED;

-- name: schedule_advance
UPDATE orchestrator.schedules
   SET next_fire_at = %(next_fire_at)s,
       last_fire_at = coalesce(%(last_fire_at)s, last_fire_at),
       buffered_fire_at = %(buffered_fire_at)s
 WHERE id = %(id)s;

-- name: schedule_has_open_run
-- Whether a run of the schedule is unfinished (overlap policies).
SELECT EXISTS (SELECT 1 FROM orchestrator.runs
                WHERE schedule_id = %(id)s AND state IN ('pending', 'running')) AS open;

-- name: schedule_next_due
-- When the next enabled schedule fires (the firer sleeps until then).
SELECT min(next_fire_at) AS next_fire_at FROM orchestrator.schedules WHERE enabled;
