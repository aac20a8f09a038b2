-- The event history (outbox). Rows are written by triggers; these are the readers.

-- name: event_list_for_job
SELECT * FROM orchestrator.events
 WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND seq > %(after_seq)s
 ORDER BY seq
 LIMIT %(limit)s;

-- name: event_list
SELECT * FROM orchestrator.events
 WHERE tenant = %(tenant)s AND seq > %(after_seq)s
   AND (%(run_id)s::uuid IS NULL OR run_id = %(run_id)s)
   AND (%(source_id)s::uuid IS NULL OR source_id = %(source_id)s)
   AND (%(job_id)s::uuid IS NULL OR job_id = %(job_id)s)
   AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s))
 ORDER BY seq
 LIMIT %(limit)s;

-- name: event_ensure_partitions
SELECT orchestrator.events_ensure_partitions(%(from_day)s::date, %(days)s) AS created;

-- name: event_drop_partitions
SELECT orchestrator.events_drop_partitions(%(cutoff)s::date, %(max_seq)s) AS dropped;

-- name: event_anchored_seq
-- How far retention may drop events: the audit chainer's cursor (every event at or below it
-- is chained, and each chaining batch anchors every tenant it touched), or, when higher, the
-- lowest newest-anchor over every tenant that has events (a tenant with events but no
-- anchor yet holds that bound at 0).
SELECT greatest(
         coalesce((SELECT seq FROM orchestrator.audit_cursor WHERE id), 0),
         (SELECT coalesce(min(coalesce(a.seq, 0)), 0)
            FROM orchestrator.tenants t
            LEFT JOIN (SELECT tenant, max(seq) AS seq FROM orchestrator.audit_anchors
                        GROUP BY tenant) a ON a.tenant = t.id
           WHERE EXISTS (SELECT 1 FROM orchestrator.events e WHERE e.tenant = t.id))) AS seq;
