-- Leasing: the hot path. Claims, completions and failures are set-based (one statement per
-- batch); every write on a lease is fenced by (id, lease_id, state = 'leased').

-- name: job_claim_batch
-- Highest priority first, then oldest; SKIP LOCKED lets any number of claimers run at once.
WITH picked AS (
  SELECT id FROM orchestrator.jobs
   WHERE state = 'ready'
     AND job_type = ANY(%(job_types)s)
     AND not_before <= %(now)s
     AND (%(tenants)s::text[] IS NULL OR tenant = ANY(%(tenants)s))
   ORDER BY priority DESC, id
   LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED
)
UPDATE orchestrator.jobs j
   SET state = 'leased', reason = 'leased', attempt = j.attempt + 1,
       lease_id = gen_random_uuid(), worker_id = %(worker_id)s, leased_at = %(now)s,
       lease_expires_at = %(now)s + make_interval(secs => %(lease_ttl_s)s),
       last_heartbeat_at = NULL, started_at = coalesce(j.started_at, %(now)s),
       updated_at = %(now)s
  FROM picked
 WHERE j.id = picked.id
RETURNING j.*;

-- name: job_complete_many
UPDATE orchestrator.jobs j
   SET state = 'succeeded', reason = 'completed', result = c.result,
       result_digest = nullif(c.result_digest, ''), finished_at = %(now)s, updated_at = %(now)s
  FROM unnest(%(ids)s::uuid[], %(lease_ids)s::uuid[], %(results)s::jsonb[],
              %(result_digests)s::text[]) AS c(id, lease_id, result, result_digest)
 WHERE j.id = c.id AND j.lease_id = c.lease_id AND j.state = 'leased'
   AND (%(tenants)s::text[] IS NULL OR j.tenant = ANY(%(tenants)s))
RETURNING j.id, j.run_id, j.lease_id;

-- name: job_leased_for_update
-- The leased jobs named by (id, lease_id) pairs, locked, for a failure decision.
SELECT j.* FROM orchestrator.jobs j
  JOIN unnest(%(ids)s::uuid[], %(lease_ids)s::uuid[]) AS f(id, lease_id)
    ON j.id = f.id AND j.lease_id = f.lease_id
 WHERE j.state = 'leased'
   AND (%(tenants)s::text[] IS NULL OR j.tenant = ANY(%(tenants)s))
 ORDER BY j.id
 FOR UPDATE OF j;

-- name: job_expired_for_update
-- Leases past their expiry (watchdog); SKIP LOCKED so a worker finishing right now wins.
SELECT * FROM orchestrator.jobs
 WHERE state = 'leased' AND lease_expires_at < %(now)s
 ORDER BY lease_expires_at, id
 LIMIT %(limit)s
 FOR UPDATE SKIP LOCKED;

-- name: job_fail_many
-- Applies failure decisions made in Python (retry with backoff, or dead).
UPDATE orchestrator.jobs j
   SET state = f.state, reason = f.reason, not_before = coalesce(f.not_before, j.not_before),
       last_error_class = f.error_class, last_error_message = f.error_message,
       last_error_retryable = f.retryable,
       finished_at = CASE WHEN f.state = 'dead' THEN %(now)s::timestamptz END,
       updated_at = %(now)s
  FROM unnest(%(ids)s::uuid[], %(states)s::text[], %(reasons)s::text[],
              %(not_befores)s::timestamptz[], %(error_classes)s::text[],
              %(error_messages)s::text[], %(retryables)s::boolean[])
       AS f(id, state, reason, not_before, error_class, error_message, retryable)
 WHERE j.id = f.id AND j.state = 'leased'
RETURNING j.id, j.run_id, j.state;

-- name: dead_letter_insert_many
INSERT INTO orchestrator.dead_letter (id, tenant, job_id, job_type, source_id, run_id,
                                      error_class, last_error, attempts, retryable, failed_at)
SELECT gen_random_uuid(), j.tenant, j.id, j.job_type, j.source_id, j.run_id,
       coalesce(j.last_error_class, 'other'), coalesce(j.last_error_message, ''), j.attempt,
       coalesce(j.last_error_retryable, false), %(now)s
  FROM orchestrator.jobs j
 WHERE j.id = ANY(%(ids)s) AND j.state = 'dead';

-- name: tx_context_set
-- The per-transaction context (tenant, actor, scopes, injected clock) the outbox triggers
-- read; the same settings Database.transaction makes, sent inside a pipeline.
SELECT set_config('orchestrator.tenant', %(tenant)s, true),
       set_config('orchestrator.actor_subject', %(actor_subject)s, true),
       set_config('orchestrator.actor_scopes', %(actor_scopes)s, true),
       set_config('orchestrator.now', %(now_text)s, true);

-- name: job_claim_fair
-- Fair batched claim. For every tenant the worker may serve and every job type it runs, a
-- LATERAL probe takes that tenant's best ready jobs (priority, then age) up to
-- %(per_tenant)s, skipping rows other claimers hold. The candidates are ranked inside their
-- tenant and interleaved round-robin across tenants (rank 1 of every tenant, then rank 2,
-- ...), so a tenant with a small backlog is served in the first batch even next to a tenant
-- with a huge one. Slot k of the batch goes to worker_ids[k] (one claim serves several
-- waiting sessions); only the columns an assignment needs are returned.
WITH cand AS (
  SELECT p.id, p.priority, p.tenant,
         row_number() OVER (PARTITION BY p.tenant ORDER BY p.priority DESC, p.id) AS tenant_rank
    FROM orchestrator.tenants t
   CROSS JOIN unnest(%(job_types)s::text[]) AS jt(job_type)
   CROSS JOIN LATERAL (
     SELECT j.id, j.priority, j.tenant FROM orchestrator.jobs j
      WHERE j.state = 'ready' AND j.tenant = t.id AND j.job_type = jt.job_type
        AND j.not_before <= %(now)s
      ORDER BY j.priority DESC, j.id
      LIMIT %(per_tenant)s
      FOR UPDATE OF j SKIP LOCKED
   ) p
   WHERE (%(tenants)s::text[] IS NULL OR t.id = ANY(%(tenants)s))
), picked AS (
  SELECT id, slot FROM (
    SELECT id, row_number() OVER (ORDER BY tenant_rank, priority DESC, id) AS slot FROM cand
  ) ranked
   WHERE slot <= %(limit)s
)
UPDATE orchestrator.jobs j
   SET state = 'leased', reason = 'leased', attempt = j.attempt + 1,
       lease_id = gen_random_uuid(), worker_id = (%(worker_ids)s::text[])[picked.slot],
       leased_at = %(now)s,
       lease_expires_at = %(now)s + make_interval(secs => %(lease_ttl_s)s),
       last_heartbeat_at = NULL, started_at = coalesce(j.started_at, %(now)s),
       updated_at = %(now)s
  FROM picked
 WHERE j.id = picked.id
RETURNING picked.slot, j.id, j.run_id, j.tenant, j.project, j.job_type, j.key, j.lease_id,
          j.lease_expires_at, j.attempt, j.max_attempts, j.idempotency_key, j.correlation_id,
          j.payload, j.payload_digest, j.trace_parent, j.trace_state, j.event_window_start,
          j.event_window_end, j.source_id, greatest(j.not_before, j.created_at) AS ready_at;

-- name: lease_extend_many
-- Heartbeats: extend each named lease (fenced) and record progress where one was sent.
UPDATE orchestrator.jobs j
   SET lease_expires_at = %(now)s + make_interval(secs => %(lease_ttl_s)s),
       last_heartbeat_at = %(now)s,
       progress_percent = CASE WHEN h.has_progress THEN h.percent ELSE j.progress_percent END,
       progress_message = CASE WHEN h.has_progress THEN h.message ELSE j.progress_message END,
       updated_at = %(now)s
  FROM unnest(%(ids)s::uuid[], %(lease_ids)s::uuid[], %(has_progress)s::boolean[],
              %(percents)s::float8[], %(messages)s::text[])
       AS h(id, lease_id, has_progress, percent, message)
 WHERE j.id = h.id AND j.lease_id = h.lease_id AND j.state = 'leased'
   AND (%(tenants)s::text[] IS NULL OR j.tenant = ANY(%(tenants)s))
RETURNING j.id, j.lease_id, j.lease_expires_at;

-- name: job_progress_many
-- Progress without extending the lease (fenced).
UPDATE orchestrator.jobs j
   SET progress_percent = p.percent, progress_message = p.message, updated_at = %(now)s
  FROM unnest(%(ids)s::uuid[], %(lease_ids)s::uuid[], %(percents)s::float8[],
              %(messages)s::text[]) AS p(id, lease_id, percent, message)
 WHERE j.id = p.id AND j.lease_id = p.lease_id AND j.state = 'leased'
   AND (%(tenants)s::text[] IS NULL OR j.tenant = ANY(%(tenants)s))
RETURNING j.id, j.lease_id;

-- name: lease_status_many
-- Why a write on a lease did not apply: the job's current state, reason and lease (a
-- canceled job keeps the lease id it had, so its holder learns to stop).
SELECT id, state, reason, lease_id, result_digest FROM orchestrator.jobs
 WHERE id = ANY(%(ids)s)
   AND (%(tenants)s::text[] IS NULL OR tenant = ANY(%(tenants)s));

-- name: artifact_insert_many
-- Artifacts of jobs whose lease the writer holds (fenced by lease id and the job's state);
-- the job's tenant, run and attempt come from the job row. A name already recorded for the
-- attempt is left alone (the caller tells an identical repeat from a conflict).
INSERT INTO orchestrator.artifacts (id, tenant, job_id, run_id, attempt, name, media_type,
                                    size_bytes, digest, uri, created_at)
SELECT a.id, j.tenant, j.id, j.run_id, j.attempt, a.name, a.media_type, a.size_bytes, a.digest,
       a.uri, %(now)s
  FROM unnest(%(ids)s::uuid[], %(job_ids)s::uuid[], %(lease_ids)s::uuid[], %(names)s::text[],
              %(media_types)s::text[], %(sizes)s::bigint[], %(digests)s::text[],
              %(uris)s::text[])
       AS a(id, job_id, lease_id, name, media_type, size_bytes, digest, uri)
  JOIN orchestrator.jobs j ON j.id = a.job_id AND j.lease_id = a.lease_id
 WHERE j.state = ANY(%(states)s)
   AND (%(tenants)s::text[] IS NULL OR j.tenant = ANY(%(tenants)s))
ON CONFLICT (job_id, attempt, name) DO NOTHING
RETURNING job_id, name;

-- name: artifact_existing_many
-- The recorded artifacts of the current attempt for (job, lease, name) triples.
SELECT a.job_id, a.name, a.digest, a.size_bytes
  FROM unnest(%(job_ids)s::uuid[], %(lease_ids)s::uuid[], %(names)s::text[])
       AS q(job_id, lease_id, name)
  JOIN orchestrator.jobs j ON j.id = q.job_id AND j.lease_id = q.lease_id
  JOIN orchestrator.artifacts a ON a.job_id = j.id AND a.attempt = j.attempt AND a.name = q.name
 WHERE (%(tenants)s::text[] IS NULL OR j.tenant = ANY(%(tenants)s));

-- name: jobs_ready_listen
-- The channel the outbox triggers NOTIFY with the job types that became claimable.
LISTEN orch_jobs_ready;

-- name: leader_try_lock
-- Leadership of a leader-only loop: a session advisory lock held by a dedicated connection
-- (released by PostgreSQL when that connection ends).
SELECT pg_try_advisory_lock(%(key)s) AS acquired;

-- name: leader_check
-- The leader's connection still holds its lock (a dead connection fails this call).
SELECT count(*) > 0 AS held FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
   AND ((classid::bigint << 32) | objid::bigint) = %(key)s;

-- name: job_claim_candidates
-- Phase one of the rate-limited claim (LeaseLedger.claim_limited): the same fair candidate
-- pick as job_claim_fair (rows locked FOR UPDATE SKIP LOCKED, round-robin across tenants),
-- without leasing. Jobs of a paused source are not candidates (they stay ready). Each
-- candidate comes with its bucket host (the source's host, '' without a source) and, when a
-- blackout of its tenant (source_id NULL) or of its source is active at %(now)s, the end of
-- the active occurrence (blackout_until). Blackouts are evaluated here, in UTC: a window
-- without a weekly recurrence is [start_at, end_at); a weekly one starts an occurrence on each
-- listed ISO weekday at start_minute_utc lasting duration_s, clipped to [start_at, end_at).
-- Chained windows are not merged: a job deferred to the end of one is deferred again then.
WITH blk AS (
  SELECT b.tenant, b.source_id, max(o.ends) AS until
    FROM orchestrator.blackouts b
   CROSS JOIN LATERAL (
     SELECT b.start_at AS begins, b.end_at AS ends
      WHERE b.recurrence IS NULL OR NOT b.recurrence ? 'weekly'
     UNION ALL
     SELECT greatest(w.begins, b.start_at),
            CASE WHEN b.end_at IS NULL THEN w.begins + w.dur
                 ELSE least(w.begins + w.dur, b.end_at) END
       FROM (SELECT d.day,
                    (d.day::timestamp
                     + make_interval(mins => (b.recurrence->'weekly'->>'start_minute_utc')::int))
                      AT TIME ZONE 'UTC' AS begins,
                    make_interval(secs => (b.recurrence->'weekly'->>'duration_s')::float8) AS dur
               FROM (SELECT (%(now)s::timestamptz AT TIME ZONE 'UTC')::date - g.n AS day
                       FROM generate_series(0, 8) AS g(n)) d) w
      WHERE b.recurrence ? 'weekly'
        AND b.recurrence->'weekly'->'days' @> to_jsonb(extract(isodow FROM w.day)::int)
   ) o
   WHERE (%(tenants)s::text[] IS NULL OR b.tenant = ANY(%(tenants)s))
     AND b.start_at <= %(now)s AND (b.end_at IS NULL OR b.end_at > %(now)s)
     AND o.begins <= %(now)s AND o.ends > %(now)s
   GROUP BY b.tenant, b.source_id
), cand AS (
  SELECT p.id, p.priority, p.tenant, p.source_id, p.host,
         row_number() OVER (PARTITION BY p.tenant ORDER BY p.priority DESC, p.id) AS tenant_rank
    FROM orchestrator.tenants t
   CROSS JOIN unnest(%(job_types)s::text[]) AS jt(job_type)
   CROSS JOIN LATERAL (
     SELECT j.id, j.priority, j.tenant, j.source_id, coalesce(s.host, '') AS host
       FROM orchestrator.jobs j
       LEFT JOIN orchestrator.sources s ON s.id = j.source_id
      WHERE j.state = 'ready' AND j.tenant = t.id AND j.job_type = jt.job_type
        AND j.not_before <= %(now)s AND NOT coalesce(s.paused, false)
      ORDER BY j.priority DESC, j.id
      LIMIT %(per_tenant)s
      FOR UPDATE OF j SKIP LOCKED
   ) p
   WHERE (%(tenants)s::text[] IS NULL OR t.id = ANY(%(tenants)s))
), ranked AS (
  SELECT cand.*, row_number() OVER (ORDER BY tenant_rank, priority DESC, id) AS slot FROM cand
)
SELECT r.id, r.tenant, r.source_id, r.host, r.slot,
       greatest(bt.until, bs.until) AS blackout_until
  FROM ranked r
  LEFT JOIN blk bt ON bt.tenant = r.tenant AND bt.source_id IS NULL
  LEFT JOIN blk bs ON bs.tenant = r.tenant AND bs.source_id = r.source_id
 WHERE r.slot <= %(limit)s
 ORDER BY r.slot;

-- name: job_lease_slots
-- Phase two: lease the admitted candidates (locked by phase one); slot k goes to
-- worker_ids[k]. Returns what job_claim_fair returns, plus the bucket host.
UPDATE orchestrator.jobs j
   SET state = 'leased', reason = 'leased', attempt = j.attempt + 1,
       lease_id = gen_random_uuid(), worker_id = (%(worker_ids)s::text[])[p.slot],
       leased_at = %(now)s,
       lease_expires_at = %(now)s + make_interval(secs => %(lease_ttl_s)s),
       last_heartbeat_at = NULL, started_at = coalesce(j.started_at, %(now)s),
       updated_at = %(now)s
  FROM unnest(%(ids)s::uuid[], %(slots)s::int[], %(hosts)s::text[]) AS p(id, slot, host)
 WHERE j.id = p.id AND j.state = 'ready'
RETURNING p.slot, p.host, j.id, j.run_id, j.tenant, j.project, j.job_type, j.key, j.lease_id,
          j.lease_expires_at, j.attempt, j.max_attempts, j.idempotency_key, j.correlation_id,
          j.payload, j.payload_digest, j.trace_parent, j.trace_state, j.event_window_start,
          j.event_window_end, j.source_id, greatest(j.not_before, j.created_at) AS ready_at;

-- name: job_defer_many
-- Phase two: candidates that may not go now wait until they can (not_before); they stay
-- ready, keep their reason and attempts, and no event is written (no state change).
UPDATE orchestrator.jobs j
   SET not_before = d.not_before, updated_at = %(now)s
  FROM unnest(%(ids)s::uuid[], %(not_befores)s::timestamptz[]) AS d(id, not_before)
 WHERE j.id = d.id AND j.state = 'ready';

-- name: job_bucket_hosts
-- The rate-limit key parts of jobs: tenant, source and the source's host ('' without one).
SELECT j.id, j.tenant, j.source_id, coalesce(s.host, '') AS host
  FROM orchestrator.jobs j
  LEFT JOIN orchestrator.sources s ON s.id = j.source_id
 WHERE j.id = ANY(%(ids)s);

-- name: throttle_insert_many
-- Upstream throttles observed by the leases service (one row per bucket per completer
-- flush); the throttles outbox trigger turns each into a throttle.changed event.
INSERT INTO orchestrator.throttles (id, tenant, source_id, host, origin, refill_per_second,
                                    capacity, effective_refill_per_second, paused_until,
                                    reason, ticket, created_by, created_at, expires_at, job_id)
SELECT t.id, t.tenant, t.source_id, t.host, t.origin, t.refill_per_second, t.capacity,
       t.effective_refill_per_second, t.paused_until, t.reason, '', %(created_by)s, %(now)s,
       NULL, t.job_id
  FROM unnest(%(ids)s::uuid[], %(tenants)s::text[], %(source_ids)s::uuid[], %(hosts)s::text[],
              %(origins)s::text[], %(refills)s::float8[], %(capacities)s::float8[],
              %(effective_refills)s::float8[], %(paused_untils)s::timestamptz[],
              %(reasons)s::text[], %(job_ids)s::uuid[])
       AS t(id, tenant, source_id, host, origin, refill_per_second, capacity,
            effective_refill_per_second, paused_until, reason, job_id);
