-- Incidents: operator-facing trouble reports.

-- name: incident_list
SELECT * FROM orchestrator.incidents
 WHERE tenant = %(tenant)s
   AND (%(state)s::text IS NULL OR state = %(state)s)
   AND (%(after_seen_at)s::timestamptz IS NULL
        OR (last_seen_at, id) < (%(after_seen_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY last_seen_at DESC, id DESC
 LIMIT %(limit)s;
