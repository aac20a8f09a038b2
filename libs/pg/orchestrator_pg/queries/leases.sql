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
RETURNING j.id, j.run_id, j.lease_id, j.job_type,
          extract(epoch FROM j.finished_at - j.leased_at)::float8 AS run_s;

-- name: lease_lock_many
-- The leased jobs named by (id, lease_id) pairs, locked, for a failure decision.
SELECT j.* FROM orchestrator.jobs j
  JOIN unnest(%(ids)s::uuid[], %(lease_ids)s::uuid[]) AS f(id, lease_id)
    ON j.id = f.id AND j.lease_id = f.lease_id
 WHERE j.state = 'leased'
   AND (%(tenants)s::text[] IS NULL OR j.tenant = ANY(%(tenants)s))
 ORDER BY j.id
 FOR UPDATE OF j;

-- name: lease_lock_expired
-- Leases past their expiry (watchdog); SKIP LOCKED so a worker finishing right now wins.
SELECT * FROM orchestrator.jobs
 WHERE state = 'leased' AND lease_expires_at < %(now)s
 ORDER BY lease_expires_at, id
 LIMIT %(limit)s
 FOR UPDATE SKIP LOCKED;

-- name: job_fail_many
-- Applies failure decisions made in Python (retry with backoff, or dead; a throttled
-- attempt is counted apart: it spends none of max_attempts).
UPDATE orchestrator.jobs j
   SET state = f.state, reason = f.reason, not_before = coalesce(f.not_before, j.not_before),
       last_error_class = f.error_class, last_error_message = f.error_message,
       last_error_retryable = f.retryable,
       throttled_attempts = j.throttled_attempts + f.throttled::int,
       finished_at = CASE WHEN f.state = 'dead' THEN %(now)s::timestamptz END,
       updated_at = %(now)s
  FROM unnest(%(ids)s::uuid[], %(states)s::text[], %(reasons)s::text[],
              %(not_befores)s::timestamptz[], %(error_classes)s::text[],
              %(error_messages)s::text[], %(retryables)s::boolean[], %(throttleds)s::boolean[])
       AS f(id, state, reason, not_before, error_class, error_message, retryable, throttled)
 WHERE j.id = f.id AND j.state = 'leased'
RETURNING j.id, j.run_id, j.state;

-- name: tx_context_set
-- The per-transaction context (tenant, actor, scopes, injected clock) the outbox triggers
-- read; the same settings Database.transaction makes, sent inside a pipeline.
SELECT set_config('orchestrator.tenant', %(tenant)s, true),
       set_config('orchestrator.actor_subject', %(actor_subject)s, true),
       set_config('orchestrator.actor_scopes', %(actor_scopes)s, true),
       set_config('orchestrator.now', %(now_text)s, true);

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

-- name: job_ready_listen
-- The channel the outbox triggers NOTIFY with the job types that became claimable.
LISTEN orch_jobs_ready;

-- name: job_claim_caps_lock
-- Serialises the claims of capped tenants (a quota with max_active, max_per_hour or a
-- pause, or a source with max_active) so two claimers cannot both see the same room: one
-- transaction-scoped advisory lock per such tenant, taken in tenant order (no deadlock).
-- Sent in the claim's pipeline BEFORE job_claim_admitted, whose snapshot then sees every
-- lease committed by the previous holder. Tenants without caps take no lock.
-- It also sets the claim transaction's planner switches:
--   * plan_cache_mode: the claim's statements use their generic plan once prepared:
--     planning job_claim_admitted costs about as much as running it (~1 ms), and its plan
--     does not depend on the parameter values (measured: generic 3.4-3.9 ms vs custom
--     4.9-5.0 ms for 60 jobs);
--   * jit off: the generic plan's cost estimate grows with the table (the probes' LIMIT is
--     a parameter) and crosses jit_above_cost at about a million rows; PostgreSQL then
--     compiled ~230 functions on every execution, 7.5 s of an 8.6 s claim. The claim reads
--     a few hundred rows at most: nothing for JIT to win;
--   * bitmap scans off: the row-level security qual makes the planner believe a tenant's
--     probe finds one row, so with many tenants it read each tenant's whole backlog
--     through a bitmap scan of jobs_tenant_id and sorted it (894 ms for 1,000 tenants x 100
--     ready jobs); the ordered scan of jobs_claimable_tenant stops at the probe's LIMIT
--     (48 ms). The claim has no other use for bitmap scans. (docs/benchmarks.md, "Claim
--     cost".)
--   * sequential scans off: on a young table (no statistics yet: a fresh install, the first
--     minute of a bench) the planner, with bitmap scans off, joined the probed ids back to
--     jobs by scanning the whole table; measured at 500 jobs/s on a fresh database: the
--     claim's PostgreSQL time per claim varied 1.4-7 ms, 1.2-1.3 ms with this switch. Every
--     table the claim reads has an index for what it looks up.
SELECT set_config('plan_cache_mode', 'force_generic_plan', true) AS plan_cache_mode,
       set_config('jit', 'off', true) AS jit,
       set_config('enable_bitmapscan', 'off', true) AS enable_bitmapscan,
       set_config('enable_seqscan', 'off', true) AS enable_seqscan,
       count(pg_advisory_xact_lock(hashtextextended('orch:caps:' || c.tenant, 0))) AS locked
  FROM (SELECT tenant FROM orchestrator.quotas
         WHERE (%(tenants)s::text[] IS NULL OR tenant = ANY(%(tenants)s))
           AND (paused OR max_active > 0 OR max_per_hour > 0)
        UNION
        SELECT tenant FROM orchestrator.sources
         WHERE (%(tenants)s::text[] IS NULL OR tenant = ANY(%(tenants)s))
           AND max_active IS NOT NULL AND deleted_at IS NULL
         ORDER BY 1) c;

-- name: job_claim_admitted
-- The fair batched claim with admission, in one statement (LeaseLedger.claim_admitted).
--
-- Weighted fair share (stride scheduling): each tenant has a pass, its share of the slots
-- served so far (%(pass_tenants)s / %(pass_values)s, kept by the caller across claims;
-- %(vtime)s for a tenant it has not served lately). Tenants are probed in pass order, and
-- for every job type the worker runs a LATERAL probe takes the tenant's best ready jobs
-- (priority, then age) up to %(per_tenant)s x its weight, skipping rows other claimers
-- hold, until %(limit)s (tenant, job type) pairs have candidates (probe CTE: with 1,000
-- tenants a claim of a few jobs neither probes nor locks a row per tenant). Slots go in
-- order of pass + rank / weight (ranked CTE): tenants with equal weights interleave rank by
-- rank, so a tenant with a small backlog is served in the first batch even next to one with
-- a huge backlog, and a weight-3 tenant gets three slots for every one of a weight-1 tenant;
-- the caller advances each served tenant's pass by leases / weight (Dispatcher). Left out: jobs of a paused source or
-- under a paused quota (they stay ready), and jobs beyond a cap:
--   * quotas (quota CTE): per tenant (job_type '') and per {tenant, job type}, max_active
--     minus the leased jobs, and the whole tokens of the hourly bucket (quota_tokens);
--     the probe's LIMIT takes the tightest, a tenant-wide room also bounds the tenant's
--     rank across job types;
--   * per-source max_active minus the source's leased jobs (src CTE).
-- Blackouts (blk CTE, rule in orchestrator.blackout_active_until, UTC): a candidate under an
-- active blackout of its tenant or source comes back as 'waiting' with blackout_until
-- (chained windows are not merged: a job deferred to the end of one is deferred again then).
--
-- Admission: with %(limited)s, a candidate is leased here only while its {tenant, host}
-- key has allowance left (the tokens the caller already holds, per key, in claim order);
-- the others come back as 'waiting' for the caller to acquire tokens for or defer (phase
-- two, job_lease_slots / job_defer_many, same transaction, rows still locked). Without
-- %(limited)s every candidate inside the caps and outside blackouts is leased.
--
-- Leased rows get slots 1..k (slot k goes to worker_ids[k]); the hourly quota tokens they
-- spend are written back (spent CTE). Rows: kind 'leased' (the assignment columns), kind
-- 'waiting' (id, slot, tenant, job_type, source_id, host, blackout_until, and capped: a
-- quota of the tenant or a source max_active applies), and one
-- kind 'meta' row: wake_at is when the next hourly quota token comes for a quota that has
-- none now (NULL: none waiting), capped whether some quota or source is at its max_active
-- after this claim's phase-one leases, weights the weight of every tenant with candidates.
WITH blk AS (
  SELECT b.tenant, b.source_id, max(a.until) AS until
    FROM orchestrator.blackouts b
   CROSS JOIN LATERAL (
     SELECT orchestrator.blackout_active_until(b.start_at, b.end_at, b.recurrence, %(now)s)
              AS until) a
   WHERE (%(tenants)s::text[] IS NULL OR b.tenant = ANY(%(tenants)s))
     AND b.start_at <= %(now)s AND (b.end_at IS NULL OR b.end_at > %(now)s)
     AND a.until IS NOT NULL
   GROUP BY b.tenant, b.source_id
), quota AS MATERIALIZED (
  SELECT q.id, q.tenant, q.job_type, q.paused, q.max_per_hour, t.tokens,
         CASE WHEN q.max_active > 0 THEN greatest(0, q.max_active - (
           SELECT count(*) FROM orchestrator.jobs a
            WHERE a.tenant = q.tenant AND a.state = 'leased'
              AND (q.job_type = '' OR a.job_type = q.job_type))) END AS active_room,
         floor(t.tokens)::bigint AS rate_room
    FROM orchestrator.quotas q
    LEFT JOIN orchestrator.quota_usage u ON u.quota_id = q.id
   CROSS JOIN LATERAL (
     SELECT CASE WHEN q.max_per_hour > 0
                 THEN orchestrator.quota_tokens(q.max_per_hour, q.burst, u.tokens, u.updated_at,
                                                %(now)s) END AS tokens) t
   WHERE (%(tenants)s::text[] IS NULL OR q.tenant = ANY(%(tenants)s))
     AND (q.paused OR q.max_active > 0 OR q.max_per_hour > 0)
), src AS MATERIALIZED (
  SELECT s.id, greatest(0, s.max_active - (
           SELECT count(*) FROM orchestrator.jobs a
            WHERE a.tenant = s.tenant AND a.state = 'leased' AND a.source_id = s.id)) AS room
    FROM orchestrator.sources s
   WHERE s.max_active IS NOT NULL AND s.deleted_at IS NULL
     AND (%(tenants)s::text[] IS NULL OR s.tenant = ANY(%(tenants)s))
), probe AS (
  -- Tenants in pass order (least served first); the scan stops once %(limit)s (tenant, job
  -- type) pairs have candidates, so a claim probes and locks about what it leases, whatever
  -- the number of tenants.
  SELECT t.id AS tenant, t.weight, t.pass, jt.job_type, qt.id AS qt_id, qj.id AS qj_id,
         least(qt.active_room, qt.rate_room) AS tenant_room, p.ids
    FROM (SELECT tn.id, tn.weight, coalesce(sp.pass, %(vtime)s::float8) AS pass
            FROM orchestrator.tenants tn
            LEFT JOIN unnest(%(pass_tenants)s::text[], %(pass_values)s::float8[])
                   AS sp(tenant, pass) ON sp.tenant = tn.id
           WHERE (%(tenants)s::text[] IS NULL OR tn.id = ANY(%(tenants)s))
           ORDER BY 3, 1) t
   CROSS JOIN unnest(%(job_types)s::text[]) AS jt(job_type)
    LEFT JOIN quota qt ON qt.tenant = t.id AND qt.job_type = ''
    LEFT JOIN quota qj ON qj.tenant = t.id AND qj.job_type = jt.job_type
   CROSS JOIN LATERAL (
     SELECT array_agg(c.id) AS ids
       FROM (SELECT j.id
               FROM orchestrator.jobs j
               LEFT JOIN orchestrator.sources s ON s.id = j.source_id
               LEFT JOIN src ON src.id = j.source_id
              WHERE j.state = 'ready' AND j.tenant = t.id AND j.job_type = jt.job_type
                AND j.not_before <= %(now)s AND NOT coalesce(s.paused, false)
                AND coalesce(src.room, 1) > 0
              ORDER BY j.priority DESC, j.id
              LIMIT least(%(per_tenant)s * t.weight, qt.active_room, qt.rate_room,
                          qj.active_room, qj.rate_room)
              FOR UPDATE OF j SKIP LOCKED) c
   ) p
   WHERE NOT coalesce(qt.paused, false) AND NOT coalesce(qj.paused, false)
     AND p.ids IS NOT NULL
   ORDER BY t.pass, t.id
   LIMIT %(limit)s
), cand AS (
  SELECT j.id, j.priority, j.tenant, j.job_type, j.source_id, coalesce(s.host, '') AS host,
         src.room AS source_room, pr.tenant_room, pr.weight, pr.pass,
         (pr.qt_id IS NOT NULL OR pr.qj_id IS NOT NULL OR src.room IS NOT NULL) AS capped,
         row_number() OVER (PARTITION BY j.tenant ORDER BY j.priority DESC, j.id) AS tenant_rank
    FROM probe pr
   CROSS JOIN unnest(pr.ids) AS u(id)
    JOIN orchestrator.jobs j ON j.id = u.id
    LEFT JOIN orchestrator.sources s ON s.id = j.source_id
    LEFT JOIN src ON src.id = j.source_id
), ranked AS (
  SELECT c.*,
         row_number() OVER (ORDER BY c.pass + c.tenant_rank::float8 / c.weight,
                                     c.priority DESC, c.id) AS slot,
         row_number() OVER (PARTITION BY c.source_id
                            ORDER BY c.pass + c.tenant_rank::float8 / c.weight,
                                     c.priority DESC, c.id) AS source_rank
    FROM cand c
   WHERE c.tenant_rank <= coalesce(c.tenant_room, c.tenant_rank)
), within AS (
  SELECT r.id, r.slot, r.tenant, r.job_type, r.source_id, r.host, r.capped,
         greatest(bt.until, bs.until) AS blackout_until
    FROM ranked r
    LEFT JOIN blk bt ON bt.tenant = r.tenant AND bt.source_id IS NULL
    LEFT JOIN blk bs ON bs.tenant = r.tenant AND bs.source_id = r.source_id
   WHERE r.slot <= %(limit)s AND r.source_rank <= coalesce(r.source_room, r.source_rank)
), keyed AS (
  SELECT w.*, row_number() OVER (PARTITION BY w.tenant, w.host ORDER BY w.slot) AS key_rank
    FROM within w
   WHERE w.blackout_until IS NULL
), go AS (
  SELECT k.id, k.host, row_number() OVER (ORDER BY k.slot) AS go_slot
    FROM keyed k
    LEFT JOIN unnest(%(allow_tenants)s::text[], %(allow_hosts)s::text[],
                     %(allow_counts)s::int[]) AS a(tenant, host, n)
      ON a.tenant = k.tenant AND a.host = k.host
   WHERE NOT %(limited)s OR k.key_rank <= coalesce(a.n, 0)
), leased AS (
  UPDATE orchestrator.jobs j
     SET state = 'leased', reason = 'leased', attempt = j.attempt + 1,
         lease_id = gen_random_uuid(), worker_id = (%(worker_ids)s::text[])[go.go_slot],
         leased_at = %(now)s,
         lease_expires_at = %(now)s + make_interval(secs => %(lease_ttl_s)s),
         last_heartbeat_at = NULL, started_at = coalesce(j.started_at, %(now)s),
         updated_at = %(now)s
    FROM go
   WHERE j.id = go.id
  RETURNING go.go_slot AS slot, go.host, j.id, j.run_id, j.tenant, j.project, j.job_type,
            j.key, j.lease_id, j.lease_expires_at, j.attempt, j.max_attempts,
            j.idempotency_key, j.correlation_id, j.payload, j.payload_digest, j.trace_parent,
            j.trace_state, j.event_window_start, j.event_window_end, j.source_id,
            greatest(j.not_before, j.created_at) AS ready_at
), spent AS (
  INSERT INTO orchestrator.quota_usage (quota_id, tenant, tokens, updated_at)
  SELECT q.id, q.tenant, q.tokens - count(*), %(now)s
    FROM quota q
    JOIN leased l ON l.tenant = q.tenant AND (q.job_type = '' OR l.job_type = q.job_type)
   WHERE q.tokens IS NOT NULL
   GROUP BY q.id, q.tenant, q.tokens
  ON CONFLICT (quota_id) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at
  RETURNING quota_id, tokens
)
SELECT 'leased' AS kind, l.slot, l.host, l.id, l.run_id, l.tenant, l.project, l.job_type,
       l.key, l.lease_id, l.lease_expires_at, l.attempt, l.max_attempts, l.idempotency_key,
       l.correlation_id, l.payload, l.payload_digest, l.trace_parent, l.trace_state,
       l.event_window_start, l.event_window_end, l.source_id, l.ready_at,
       NULL::timestamptz AS blackout_until, NULL::boolean AS capped,
       NULL::timestamptz AS wake_at, NULL::jsonb AS weights
  FROM leased l
UNION ALL
SELECT 'waiting', w.slot, w.host, w.id, NULL, w.tenant, NULL, w.job_type, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, w.source_id, NULL,
       w.blackout_until, w.capped, NULL, NULL
  FROM within w
 WHERE NOT EXISTS (SELECT 1 FROM go WHERE go.id = w.id)
UNION ALL
SELECT 'meta', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       EXISTS (SELECT 1 FROM quota q
                WHERE q.active_room <= (SELECT count(*) FROM leased l
                                         WHERE l.tenant = q.tenant
                                           AND (q.job_type = '' OR l.job_type = q.job_type)))
         OR EXISTS (SELECT 1 FROM src
                     WHERE src.room <= (SELECT count(*) FROM leased l
                                         WHERE l.source_id = src.id)),
       (SELECT min(%(now)s::timestamptz
                   + make_interval(secs => (1 - t.left) * 3600.0 / q.max_per_hour))
          FROM quota q
          LEFT JOIN spent ON spent.quota_id = q.id
         CROSS JOIN LATERAL (SELECT coalesce(spent.tokens, q.tokens) AS left) t
         WHERE t.left < 1 AND NOT q.paused),
       (SELECT jsonb_object_agg(w.tenant, w.weight)
          FROM (SELECT DISTINCT tenant, weight FROM cand) w);

-- name: job_lease_slots
-- Phase two: lease the candidates admitted after waiting (locked by job_claim_admitted);
-- slot k goes to worker_ids[k]. Returns the assignment columns, like a 'leased' row.
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
