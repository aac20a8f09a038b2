-- The audit hash chain: the chainer's cursor and settle horizon, links, anchors, and the
-- tenant-scoped reads behind ListAuditEntries, GetChainHead and ExportBundle.

-- name: audit_cursor_get
SELECT seq FROM orchestrator.audit_cursor WHERE id;

-- name: audit_cursor_set
INSERT INTO orchestrator.audit_cursor (id, seq, updated_at)
VALUES (true, %(seq)s, %(now)s)
ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at;

-- name: audit_seq_allocated
-- The highest event seq handed out so far (0 before the first event).
SELECT coalesce(pg_sequence_last_value('orchestrator.events_seq'), 0) AS seq;

-- name: audit_chain_heads
-- The newest link of every tenant's chain (the chainer's starting point).
SELECT t.id AS tenant, c.seq, c.hash
  FROM orchestrator.tenants t
  CROSS JOIN LATERAL (SELECT seq, hash FROM orchestrator.audit_chain
                       WHERE tenant = t.id ORDER BY seq DESC LIMIT 1) c;

-- name: audit_events_settled
-- Events with after < seq <= upto in seq order, one index probe per tenant.
SELECT e.* FROM orchestrator.tenants t
 CROSS JOIN LATERAL (SELECT * FROM orchestrator.events
                      WHERE tenant = t.id AND seq > %(after)s AND seq <= %(upto)s
                      ORDER BY seq LIMIT %(limit)s) e
 ORDER BY e.seq
 LIMIT %(limit)s;

-- name: audit_chain_insert_many
INSERT INTO orchestrator.audit_chain (tenant, seq, event_id, prev_hash, hash, chained_at)
SELECT * FROM unnest(%(tenants)s::text[], %(seqs)s::bigint[], %(event_ids)s::uuid[],
                     %(prev_hashes)s::text[], %(hashes)s::text[]),
       (SELECT %(now)s::timestamptz) AS at;

-- name: audit_anchor_insert_many
INSERT INTO orchestrator.audit_anchors (tenant, seq, hash, anchored_at)
SELECT * FROM unnest(%(tenants)s::text[], %(seqs)s::bigint[], %(hashes)s::text[]),
       (SELECT %(now)s::timestamptz) AS at
ON CONFLICT DO NOTHING;

-- name: audit_chain_head
-- The tenant's newest anchored link.
SELECT tenant, seq, hash, anchored_at FROM orchestrator.audit_anchors
 WHERE tenant = %(tenant)s ORDER BY seq DESC LIMIT 1;

-- name: audit_anchor_at_or_before
SELECT tenant, seq, hash, anchored_at FROM orchestrator.audit_anchors
 WHERE tenant = %(tenant)s AND seq <= %(seq)s ORDER BY seq DESC LIMIT 1;

-- name: audit_entry_list
SELECT a.*, e.event_id, c.hash, c.prev_hash
  FROM orchestrator.audit_entries a
  LEFT JOIN orchestrator.events e ON e.tenant = a.tenant AND e.seq = a.seq
  LEFT JOIN orchestrator.audit_chain c ON c.tenant = a.tenant AND c.seq = a.seq
 WHERE a.tenant = %(tenant)s AND a.seq > %(after_seq)s
   AND (%(actor)s::text IS NULL OR a.actor_subject = %(actor)s)
   AND (%(action)s::text IS NULL OR a.action = %(action)s)
   AND (%(start)s::timestamptz IS NULL OR a.occurred_at >= %(start)s)
   AND (%(end)s::timestamptz IS NULL OR a.occurred_at < %(end)s)
 ORDER BY a.seq
 LIMIT %(limit)s;

-- name: audit_export_events_run
SELECT e.*, c.prev_hash AS chain_prev_hash, c.hash AS chain_hash
  FROM orchestrator.events e
  JOIN orchestrator.audit_chain c ON c.tenant = e.tenant AND c.seq = e.seq
 WHERE e.tenant = %(tenant)s
   AND (e.run_id = %(run_id)s OR (e.type LIKE 'audit.%%' AND e.data->>'target' = ANY(%(targets)s)))
 ORDER BY e.seq;

-- name: audit_export_events_source
SELECT e.*, c.prev_hash AS chain_prev_hash, c.hash AS chain_hash
  FROM orchestrator.events e
  JOIN orchestrator.audit_chain c ON c.tenant = e.tenant AND c.seq = e.seq
 WHERE e.tenant = %(tenant)s
   AND (e.source_id = %(source_id)s
        OR (e.type LIKE 'audit.%%' AND e.data->>'target' = ANY(%(targets)s)))
 ORDER BY e.seq;

-- name: audit_export_events_window
SELECT e.*, c.prev_hash AS chain_prev_hash, c.hash AS chain_hash
  FROM orchestrator.events e
  JOIN orchestrator.audit_chain c ON c.tenant = e.tenant AND c.seq = e.seq
 WHERE e.tenant = %(tenant)s AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
 ORDER BY e.seq;

-- name: audit_export_jobs_run
SELECT * FROM orchestrator.jobs WHERE tenant = %(tenant)s AND run_id = %(run_id)s ORDER BY id;

-- name: audit_export_jobs_source
SELECT * FROM orchestrator.jobs WHERE tenant = %(tenant)s AND source_id = %(source_id)s
 ORDER BY id;

-- name: audit_export_jobs_window
-- Jobs whose whole history lies in the window (created in it, no event after it), so
-- history.jsonl replays them from their creation.
SELECT j.* FROM orchestrator.jobs j
 WHERE j.tenant = %(tenant)s
   AND EXISTS (SELECT 1 FROM orchestrator.events e
                WHERE e.tenant = j.tenant AND e.job_id = j.id AND e.type = 'job.created'
                  AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s)
   AND NOT EXISTS (SELECT 1 FROM orchestrator.events e
                    WHERE e.tenant = j.tenant AND e.job_id = j.id
                      AND (e.occurred_at >= %(end)s OR e.occurred_at < %(start)s))
 ORDER BY j.id;

-- name: audit_export_throttles_run
SELECT * FROM orchestrator.throttles t
 WHERE t.tenant = %(tenant)s
   AND (t.job_id IN (SELECT id FROM orchestrator.jobs WHERE tenant = %(tenant)s AND run_id = %(run_id)s)
        OR t.source_id IN (SELECT source_id FROM orchestrator.jobs
                            WHERE tenant = %(tenant)s AND run_id = %(run_id)s))
 ORDER BY t.created_at, t.id;

-- name: audit_export_throttles_source
SELECT * FROM orchestrator.throttles
 WHERE tenant = %(tenant)s AND source_id = %(source_id)s ORDER BY created_at, id;

-- name: audit_export_throttles_window
SELECT * FROM orchestrator.throttles
 WHERE tenant = %(tenant)s AND created_at >= %(start)s AND created_at < %(end)s
 ORDER BY created_at, id;

-- name: audit_scope_run_exists
SELECT id FROM orchestrator.runs WHERE tenant = %(tenant)s AND id = %(id)s;

-- name: audit_scope_source_exists
SELECT id FROM orchestrator.sources WHERE tenant = %(tenant)s AND id = %(id)s;

-- name: audit_run_job_targets
SELECT 'jobs/' || id AS target FROM orchestrator.jobs WHERE tenant = %(tenant)s AND run_id = %(run_id)s;
