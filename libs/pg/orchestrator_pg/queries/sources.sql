-- Source registry: an upstream feed (NVD, OSV, GHSA, a CSAF server …) of one tenant.

-- name: source_create
INSERT INTO orchestrator.sources (id, tenant, name, source_type, host, base_url, enabled,
                                  paused, paused_reason, paused_ticket, job_types, labels,
                                  max_active, created_at, updated_at)
VALUES (%(id)s, %(tenant)s, %(name)s, %(source_type)s, %(host)s, %(base_url)s, %(enabled)s,
        %(paused)s, %(paused_reason)s, %(paused_ticket)s, %(job_types)s, %(labels)s,
        %(max_active)s, %(now)s, %(now)s)
RETURNING *;

-- name: source_get
SELECT * FROM orchestrator.sources
 WHERE tenant = %(tenant)s AND id = %(id)s AND deleted_at IS NULL;

-- name: source_get_many
SELECT id, name, enabled FROM orchestrator.sources
 WHERE tenant = %(tenant)s AND id = ANY(%(ids)s) AND deleted_at IS NULL;

-- name: source_list
SELECT * FROM orchestrator.sources
 WHERE tenant = %(tenant)s AND deleted_at IS NULL
   AND (%(source_type)s::text IS NULL OR source_type = %(source_type)s)
   AND (%(enabled)s::boolean IS NULL OR enabled = %(enabled)s)
   AND (%(after_id)s::uuid IS NULL OR id > %(after_id)s)
 ORDER BY id
 LIMIT %(limit)s;

-- name: source_update
-- Only the fields named in %(mask)s change; version counts every change.
UPDATE orchestrator.sources SET
       name          = CASE WHEN 'name' = ANY(%(mask)s) THEN %(name)s ELSE name END,
       source_type   = CASE WHEN 'source_type' = ANY(%(mask)s) THEN %(source_type)s ELSE source_type END,
       host          = CASE WHEN 'host' = ANY(%(mask)s) THEN %(host)s ELSE host END,
       base_url      = CASE WHEN 'base_url' = ANY(%(mask)s) THEN %(base_url)s ELSE base_url END,
       enabled       = CASE WHEN 'enabled' = ANY(%(mask)s) THEN %(enabled)s ELSE enabled END,
       paused        = CASE WHEN 'paused' = ANY(%(mask)s) THEN %(paused)s ELSE paused END,
       paused_reason = CASE WHEN 'paused_reason' = ANY(%(mask)s) THEN %(paused_reason)s ELSE paused_reason END,
       paused_ticket = CASE WHEN 'paused_ticket' = ANY(%(mask)s) THEN %(paused_ticket)s ELSE paused_ticket END,
       job_types     = CASE WHEN 'job_types' = ANY(%(mask)s) THEN %(job_types)s ELSE job_types END,
       labels        = CASE WHEN 'labels' = ANY(%(mask)s) THEN %(labels)s ELSE labels END,
       max_active    = CASE WHEN 'max_active' = ANY(%(mask)s) THEN %(max_active)s ELSE max_active END,
       version       = version + 1,
       updated_at    = %(now)s
 WHERE tenant = %(tenant)s AND id = %(id)s AND deleted_at IS NULL
   AND (%(expected_version)s::bigint = 0 OR version = %(expected_version)s)
RETURNING *;

-- name: source_count_open_jobs
SELECT count(*) AS open_jobs FROM orchestrator.jobs
 WHERE tenant = %(tenant)s AND source_id = %(id)s AND state IN ('pending', 'ready', 'leased');

-- name: source_delete
UPDATE orchestrator.sources
   SET deleted_at = %(now)s, updated_at = %(now)s, version = version + 1
 WHERE tenant = %(tenant)s AND id = %(id)s AND deleted_at IS NULL
RETURNING *;

-- name: source_version
SELECT version FROM orchestrator.sources
 WHERE tenant = %(tenant)s AND id = %(id)s AND deleted_at IS NULL;

-- name: source_of_tenant
-- Whether a source belongs to the tenant (references to sources are checked here, not left
-- to foreign keys, which would accept another tenant's source).
SELECT EXISTS (SELECT 1 FROM orchestrator.sources
                WHERE tenant = %(tenant)s AND id = %(id)s AND deleted_at IS NULL) AS mine;
