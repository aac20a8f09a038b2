-- The tenant overview's head figures, across dead letters, runs and events.

-- name: overview_counts
SELECT (SELECT count(*) FROM orchestrator.dead_letter
         WHERE tenant = %(tenant)s AND status = 'pending') AS dead_letter_pending,
       (SELECT count(*) FROM orchestrator.runs
         WHERE tenant = %(tenant)s AND state IN ('pending', 'running')) AS active_runs,
       (SELECT coalesce(max(seq), 0) FROM orchestrator.events
         WHERE tenant = %(tenant)s) AS head_seq;
