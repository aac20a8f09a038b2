-- The event history (outbox). Rows are written by triggers; these are the readers.
--
-- Live streams read a page of events up to a safe horizon:
-- `seq` comes from a sequence, so a transaction that took seq 10 may commit after another
-- that took seq 11. A stream that already moved past 11 would never see 10. The horizon
-- (below) is a seq up to which every writer has finished, so events <= horizon are final.

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

-- name: event_list_upto
SELECT * FROM orchestrator.events
 WHERE tenant = %(tenant)s AND seq > %(after_seq)s AND seq <= %(upto_seq)s
   AND (%(run_id)s::uuid IS NULL OR run_id = %(run_id)s)
   AND (%(source_id)s::uuid IS NULL OR source_id = %(source_id)s)
   AND (%(job_id)s::uuid IS NULL OR job_id = %(job_id)s)
   AND ((%(types)s::text[] IS NULL AND %(prefixes)s::text[] IS NULL)
        OR type = ANY(coalesce(%(types)s::text[], '{}'))
        OR EXISTS (SELECT 1 FROM unnest(%(prefixes)s::text[]) p WHERE starts_with(type, p)))
 ORDER BY seq
 LIMIT %(limit)s;

-- name: event_horizon_candidate
-- Step 1: the highest seq handed out so far (non-transactional read of the sequence).
SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS seq FROM orchestrator.events_seq;

-- name: event_horizon_writers
-- Step 2, in a later statement: the transactions writing events now. A writer locks
-- orchestrator.events (RowExclusiveLock) before its insert draws a seq and holds the lock
-- until it ends, so every writer holding a seq <= the candidate is in this list or already
-- finished. (Not a snapshot's in-progress list: a snapshot leaves out transactions whose xid
-- is above the newest finished one, and a writer whose first write is its event insert has no
-- xid yet when it draws its seq; both lost live events under load.) Readers hold only
-- AccessShareLock and are not waited for.
SELECT coalesce(array_agg(DISTINCT virtualtransaction), '{}') AS writers
  FROM pg_locks
 WHERE locktype = 'relation'
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND relation = 'orchestrator.events'::regclass
   AND mode = 'RowExclusiveLock'
   AND pid <> pg_backend_pid();

-- name: event_horizon_settled
-- Step 3: true once none of those transactions still writes events (a virtual transaction
-- id names one transaction of one backend; the next transaction there gets a new one).
SELECT NOT EXISTS (
  SELECT 1
    FROM pg_locks
   WHERE locktype = 'relation'
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND relation = 'orchestrator.events'::regclass
     AND mode = 'RowExclusiveLock'
     AND virtualtransaction = ANY(%(writers)s::text[])) AS settled;

-- name: event_listen
LISTEN orch_events;

-- name: event_count_outcomes
-- Attempt outcomes in [since, now) from the event history.
SELECT count(*) FILTER (WHERE type = 'job.succeeded') AS succeeded,
       count(*) FILTER (WHERE type = 'job.dead') AS dead,
       count(*) FILTER (WHERE type = 'job.retrying' OR (type = 'job.dead' AND from_state = 'leased'))
         AS failed_attempts
  FROM orchestrator.events
 WHERE tenant = %(tenant)s AND occurred_at >= %(since)s
   AND type IN ('job.succeeded', 'job.dead', 'job.retrying');

-- name: event_failure_heatmap
-- The Console's failure heatmap: finished attempts and failed ones (as in
-- event_count_outcomes: a retry, or the death of a leased job) per source and UTC hour in
-- [since, until).
SELECT e.source_id, coalesce(s.name, '') AS source_name,
       date_trunc('hour', e.occurred_at) AS hour,
       count(*) FILTER (WHERE e.type = 'job.retrying'
                         OR (e.type = 'job.dead' AND e.from_state = 'leased')) AS failures,
       count(*) AS attempts
  FROM orchestrator.events e
  LEFT JOIN orchestrator.sources s ON s.id = e.source_id
 WHERE e.tenant = %(tenant)s AND e.occurred_at >= %(since)s AND e.occurred_at < %(until)s
   AND e.type IN ('job.succeeded', 'job.dead', 'job.retrying')
 GROUP BY e.source_id, s.name, date_trunc('hour', e.occurred_at)
 ORDER BY s.name, e.source_id, hour;
