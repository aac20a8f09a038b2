-- Blackouts: windows in which a tenant's (or one source's) jobs are not leased; the
-- recurrence is evaluated in Python (orchestrator_core.blackouts).

-- name: blackout_insert
INSERT INTO orchestrator.blackouts (id, tenant, source_id, start_at, end_at, recurrence,
                                    reason, ticket, created_by, created_at)
VALUES (%(id)s, %(tenant)s, %(source_id)s, %(start_at)s, %(end_at)s, %(recurrence)s,
        %(reason)s, %(ticket)s, %(created_by)s, %(now)s)
RETURNING *;

-- name: blackout_replace
-- Replaces the tenant's blackout with this id (no row: no such blackout in the tenant).
UPDATE orchestrator.blackouts
   SET source_id = %(source_id)s, start_at = %(start_at)s, end_at = %(end_at)s,
       recurrence = %(recurrence)s, reason = %(reason)s, ticket = %(ticket)s,
       created_by = %(created_by)s, created_at = %(now)s
 WHERE tenant = %(tenant)s AND id = %(id)s
RETURNING *;

-- name: blackout_list
SELECT * FROM orchestrator.blackouts
 WHERE tenant = %(tenant)s
   AND (%(source_id)s::uuid IS NULL OR source_id IS NULL OR source_id = %(source_id)s)
   AND (%(after_id)s::uuid IS NULL OR id > %(after_id)s)
 ORDER BY id
 LIMIT %(limit)s;

-- name: blackout_delete
DELETE FROM orchestrator.blackouts
 WHERE tenant = %(tenant)s AND id = %(id)s
RETURNING id;

-- name: blackout_candidates
-- The tenant's blackouts that have not ended by %(now)s (cached briefly per tenant); the
-- recurrence is evaluated in Python (orchestrator_ratelimit._blackout).
SELECT * FROM orchestrator.blackouts
 WHERE tenant = %(tenant)s
   AND (end_at IS NULL OR end_at > %(now)s)
 ORDER BY id;
