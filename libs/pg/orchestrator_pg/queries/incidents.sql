-- Incidents: operator-facing trouble reports.

-- name: incident_list
SELECT * FROM orchestrator.incidents
 WHERE tenant = %(tenant)s
   AND (%(state)s::text IS NULL OR state = %(state)s)
   AND (%(after_at)s::timestamptz IS NULL
        OR (last_seen_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY last_seen_at DESC, id DESC
 LIMIT %(limit)s;

-- name: incident_get
SELECT * FROM orchestrator.incidents WHERE tenant = %(tenant)s AND id = %(id)s;

-- name: incident_timeline
-- The incident's events (opened, updated, acknowledged, resolved) in seq order.
SELECT seq, occurred_at, type, actor_subject, reason, data FROM orchestrator.events
 WHERE tenant = %(tenant)s AND type LIKE 'incident.%%' AND data->>'incident_id' = %(id)s::text
 ORDER BY seq
 LIMIT %(limit)s;

-- name: incident_acknowledge
-- An operator has seen the incident: who and why (the reason arrives redacted). Only once.
UPDATE orchestrator.incidents
   SET acknowledged_at = %(now)s, acknowledged_by = %(actor)s, acknowledge_reason = %(reason)s
 WHERE tenant = %(tenant)s AND id = %(id)s AND acknowledged_at IS NULL
RETURNING *;

-- name: incident_open_counts
-- Open incidents by tenant and error class (the orch_incidents_open gauge).
SELECT tenant, error_class, count(*) AS n FROM orchestrator.incidents
 WHERE state = 'open'
 GROUP BY tenant, error_class
 ORDER BY n DESC, tenant, error_class
 LIMIT %(max_series)s;

-- name: incident_policy_upsert
INSERT INTO orchestrator.incident_policies (tenant, failure_threshold, window_s, quiet_s,
                                            updated_at)
VALUES (%(tenant)s, %(failure_threshold)s, %(window_s)s, %(quiet_s)s, %(now)s)
ON CONFLICT (tenant) DO UPDATE
   SET failure_threshold = excluded.failure_threshold, window_s = excluded.window_s,
       quiet_s = excluded.quiet_s, updated_at = excluded.updated_at
RETURNING *;

-- name: incident_policy_list
SELECT * FROM orchestrator.incident_policies ORDER BY tenant;

------------------------------------------------------------------------------------------
-- The incident pass (leader of LeaderLoop.INCIDENTS; migrations/0010_incidents.sql). Every
-- query below runs in the pass's transaction, after incident_cursor_lock.

-- name: incident_cursor_lock
-- The pass's cursor, locked until the pass commits: a second pass waits, then reads the
-- cursor the first one wrote, so no failure is counted twice.
SELECT seq FROM orchestrator.incident_cursor WHERE id FOR UPDATE;

-- name: incident_cursor_set
INSERT INTO orchestrator.incident_cursor (id, seq, updated_at)
VALUES (true, %(seq)s, %(now)s)
ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at;

-- name: incident_failures_after
-- Failed attempts with after < seq <= upto in seq order (one index probe per tenant); the
-- error classes in %(ignored)s are not failures (upstream 429s).
SELECT e.seq, e.tenant, e.job_id, e.job_type, e.source_id, e.occurred_at, e.error_class
  FROM orchestrator.tenants t
 CROSS JOIN LATERAL (
       SELECT seq, tenant, job_id, coalesce(job_type, '') AS job_type, source_id, occurred_at,
              coalesce(nullif(data->>'error_class', ''), 'other') AS error_class
         FROM orchestrator.events
        WHERE tenant = t.id AND seq > %(after)s AND seq <= %(upto)s
          AND type = ANY(%(types)s) AND job_id IS NOT NULL
          AND coalesce(data->>'error_class', '') <> ALL(%(ignored)s)
        ORDER BY seq LIMIT %(limit)s) e
 ORDER BY e.seq
 LIMIT %(limit)s;

-- name: incident_open_of_tenants
SELECT * FROM orchestrator.incidents WHERE state = 'open' AND tenant = ANY(%(tenants)s);

-- name: incident_windows_of_tenants
SELECT * FROM orchestrator.incident_windows WHERE tenant = ANY(%(tenants)s)
 ORDER BY failed_at;

-- name: incident_policies_of_tenants
SELECT * FROM orchestrator.incident_policies WHERE tenant = ANY(%(tenants)s);

-- name: incident_windows_delete_tenants
DELETE FROM orchestrator.incident_windows WHERE tenant = ANY(%(tenants)s);

-- name: incident_windows_insert_many
INSERT INTO orchestrator.incident_windows (tenant, job_type, source_id, error_class, job_id,
                                           failed_at)
SELECT * FROM unnest(%(tenants)s::text[], %(job_types)s::text[], %(source_ids)s::uuid[],
                     %(error_classes)s::text[], %(job_ids)s::uuid[],
                     %(failed_ats)s::timestamptz[]);

-- name: incident_windows_prune
-- Failures older than any window can still use (the longest window of any policy).
DELETE FROM orchestrator.incident_windows
 WHERE failed_at < %(now)s - make_interval(secs => greatest(
         %(default_window_s)s,
         (SELECT coalesce(max(window_s), 0) FROM orchestrator.incident_policies)));

-- name: incident_insert_many
-- New incidents; the reason code is "<source type or job type>.<error class>.burst".
-- Sample job ids travel as comma-joined text (unnest cannot carry arrays of arrays).
INSERT INTO orchestrator.incidents (id, tenant, error_class, source_id, job_type, state,
                                    reason_code, failure_count, sample_job_ids, first_seen_at,
                                    last_seen_at, resolved_at)
SELECT i.id, i.tenant, i.error_class, i.source_id, i.job_type,
       CASE WHEN i.resolved_at IS NULL THEN 'open' ELSE 'resolved' END,
       coalesce(nullif(s.source_type, ''), nullif(i.job_type, ''), 'job')
         || '.' || i.error_class || '.burst',
       i.failure_count, string_to_array(i.samples, ',')::uuid[], i.first_seen_at,
       i.last_seen_at, i.resolved_at
  FROM unnest(%(ids)s::uuid[], %(tenants)s::text[], %(error_classes)s::text[],
              %(source_ids)s::uuid[], %(job_types)s::text[], %(failure_counts)s::bigint[],
              %(samples)s::text[], %(first_seen_ats)s::timestamptz[],
              %(last_seen_ats)s::timestamptz[], %(resolved_ats)s::timestamptz[])
       AS i (id, tenant, error_class, source_id, job_type, failure_count, samples,
             first_seen_at, last_seen_at, resolved_at)
  LEFT JOIN orchestrator.sources s ON s.id = i.source_id
 ORDER BY i.id;

-- name: incident_update_many
-- Stored incidents that grew (count, samples, last seen) or resolved after a gap.
UPDATE orchestrator.incidents n
   SET failure_count = i.failure_count, sample_job_ids = string_to_array(i.samples, ',')::uuid[],
       last_seen_at = i.last_seen_at, resolved_at = i.resolved_at,
       state = CASE WHEN i.resolved_at IS NULL THEN 'open' ELSE 'resolved' END
  FROM unnest(%(ids)s::uuid[], %(failure_counts)s::bigint[], %(samples)s::text[],
              %(last_seen_ats)s::timestamptz[], %(resolved_ats)s::timestamptz[])
       AS i (id, failure_count, samples, last_seen_at, resolved_at)
 WHERE n.id = i.id AND n.state = 'open';

-- name: incident_resolve_quiet
-- Open incidents whose cluster stayed quiet for its tenant's quiet period resolve at
-- last seen + quiet period.
UPDATE orchestrator.incidents i
   SET state = 'resolved',
       resolved_at = i.last_seen_at + make_interval(secs => q.quiet_s)
  FROM (SELECT o.id, coalesce(p.quiet_s, %(default_quiet_s)s) AS quiet_s
          FROM orchestrator.incidents o
          LEFT JOIN orchestrator.incident_policies p ON p.tenant = o.tenant
         WHERE o.state = 'open') q
 WHERE i.id = q.id AND i.state = 'open'
   AND i.last_seen_at + make_interval(secs => q.quiet_s) <= %(now)s
RETURNING i.id;
