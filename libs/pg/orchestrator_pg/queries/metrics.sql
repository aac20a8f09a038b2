-- Reads behind the domain metrics (docs/metrics.md). Each runs once per interval on ONE
-- replica (the leader of its loop) or once per completer flush, never per scrape, and
-- returns one row per label set, so a scrape costs nothing and replicas do not multiply it.

-- name: metrics_queue_snapshot
-- Jobs not yet finished by {tenant, job_type, state} and pending dead-letter entries by
-- {tenant, error_class}, in one round trip. `kind` tells the two apart. At most
-- %(max_series)s rows of each kind, the largest first: the cardinality bound.
(SELECT 'queue' AS kind, tenant, job_type, state AS label, count(*) AS n
   FROM orchestrator.jobs
  WHERE state IN ('pending', 'ready', 'leased')
  GROUP BY tenant, job_type, state
  ORDER BY n DESC, tenant, job_type, state
  LIMIT %(max_series)s)
UNION ALL
(SELECT 'dead_letter' AS kind, tenant, '' AS job_type, error_class AS label, count(*) AS n
   FROM orchestrator.dead_letter
  WHERE status = 'pending'
  GROUP BY tenant, error_class
  ORDER BY n DESC, tenant, error_class
  LIMIT %(max_series)s);

-- name: metrics_audit_chain_lag
-- How far the audit chain trails the outbox: seqs handed out past the chainer's cursor
-- (events still being written count: the chain must wait for them too) and the oldest
-- committed event after the cursor (one index probe per tenant).
SELECT coalesce(pg_sequence_last_value('orchestrator.events_seq'), 0) AS allocated,
       (SELECT min(e.occurred_at)
          FROM orchestrator.tenants t
         CROSS JOIN LATERAL (SELECT occurred_at FROM orchestrator.events
                              WHERE tenant = t.id AND seq > %(cursor)s
                              ORDER BY seq LIMIT 1) e) AS oldest_unchained_at;
