-- Webhooks: subscriptions (webhooks), deliveries (webhook_deliveries), attempts
-- (webhook_attempts) and the dispatcher's cursor (migrations/0013_webhooks.sql).
--
-- Contract: an attempt is claimed (attempt + 1, its webhook_attempts row inserted) and
-- committed before it is sent, and its outcome is written only where `attempt` still equals
-- the claimed number: a stale sender (a deposed leader, a redelivery in between) changes
-- nothing. Secrets are read only by the dispatcher's claim and returned only by create and
-- rotate (the owner sees them once).

-- name: webhook_insert
INSERT INTO orchestrator.webhooks (id, tenant, url, event_types, source_id, job_type,
                                   description, enabled, secret, created_by, created_at,
                                   updated_at)
VALUES (%(id)s, %(tenant)s, %(url)s, %(event_types)s, %(source_id)s, %(job_type)s,
        %(description)s, %(enabled)s, %(secret)s, %(actor)s, %(now)s, %(now)s)
RETURNING *;

-- name: webhook_list
SELECT * FROM orchestrator.webhooks
 WHERE tenant = %(tenant)s
   AND (%(after_at)s::timestamptz IS NULL
        OR (created_at, id) > (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY created_at, id
 LIMIT %(limit)s;

-- name: webhook_get
SELECT * FROM orchestrator.webhooks WHERE tenant = %(tenant)s AND id = %(id)s;

-- name: webhook_update
-- NULL leaves a field as it is (clear_source / clear_job_type remove a filter); enabling a
-- disabled subscription forgets its failure streak.
UPDATE orchestrator.webhooks
   SET url = coalesce(%(url)s::text, url),
       event_types = coalesce(%(event_types)s::text[], event_types),
       source_id = CASE WHEN %(clear_source)s::boolean THEN NULL
                        ELSE coalesce(%(source_id)s::uuid, source_id) END,
       job_type = CASE WHEN %(clear_job_type)s::boolean THEN NULL
                       ELSE coalesce(%(job_type)s::text, job_type) END,
       description = coalesce(%(description)s::text, description),
       enabled = coalesce(%(enabled)s::boolean, enabled),
       disabled_reason = CASE WHEN coalesce(%(enabled)s::boolean, enabled) THEN ''
                              WHEN %(enabled)s::boolean IS NOT NULL AND enabled THEN 'operator'
                              ELSE disabled_reason END,
       failure_streak = CASE WHEN %(enabled)s::boolean AND NOT enabled THEN 0 ELSE failure_streak END,
       failing_since = CASE WHEN %(enabled)s::boolean AND NOT enabled THEN NULL ELSE failing_since END,
       updated_at = %(now)s
 WHERE tenant = %(tenant)s AND id = %(id)s
RETURNING *;

-- name: webhook_delete
DELETE FROM orchestrator.webhooks WHERE tenant = %(tenant)s AND id = %(id)s RETURNING id;

-- name: webhook_rotate_secret
-- The new secret signs from now on; the old one keeps signing too until previous_expires_at.
UPDATE orchestrator.webhooks
   SET previous_secret = secret, previous_expires_at = %(previous_expires_at)s,
       secret = %(secret)s, updated_at = %(now)s
 WHERE tenant = %(tenant)s AND id = %(id)s
RETURNING *;

-- name: webhook_delivery_list
-- A subscription's deliveries, newest event first.
SELECT d.id, d.tenant, d.webhook_id, d.event_seq, d.event_id, d.event_type, d.state,
       d.attempt, d.next_attempt_at, d.status_code, d.latency_ms, d.error, d.created_at,
       d.updated_at
  FROM orchestrator.webhook_deliveries d
 WHERE d.tenant = %(tenant)s AND d.webhook_id = %(webhook_id)s
   AND (%(state)s::text IS NULL OR d.state = %(state)s)
   AND (%(after_seq)s::bigint IS NULL OR d.event_seq < %(after_seq)s)
 ORDER BY d.event_seq DESC
 LIMIT %(limit)s;

-- name: webhook_delivery_get
SELECT d.id, d.tenant, d.webhook_id, d.event_seq, d.event_id, d.event_type, d.state,
       d.attempt, d.next_attempt_at, d.status_code, d.latency_ms, d.error, d.created_at,
       d.updated_at, d.payload
  FROM orchestrator.webhook_deliveries d
 WHERE d.tenant = %(tenant)s AND d.id = %(id)s;

-- name: webhook_attempt_list
SELECT * FROM orchestrator.webhook_attempts
 WHERE tenant = %(tenant)s AND delivery_id = %(delivery_id)s
 ORDER BY attempt;

-- name: webhook_redeliver
-- Manual redelivery: due now as the next attempt, whatever its state.
UPDATE orchestrator.webhook_deliveries
   SET state = 'pending', next_attempt_at = %(now)s, error = '', updated_at = %(now)s
 WHERE tenant = %(tenant)s AND id = %(id)s
RETURNING id, tenant, webhook_id, event_seq, event_id, event_type, state, attempt,
          next_attempt_at, status_code, latency_ms, error, created_at, updated_at;

------------------------------------------------------------------------------------------
-- The dispatcher (leader of LeaderLoop.WEBHOOKS): fan-out, then attempts.

-- name: webhook_cursor_lock
-- The fan-out's cursor, locked until the fan-out commits: a second fan-out waits, then
-- reads the cursor the first one wrote.
SELECT seq FROM orchestrator.webhook_cursor WHERE id FOR UPDATE;

-- name: webhook_cursor_start
-- Where the first fan-out starts (no cursor stored yet): just before the first event that
-- occurred once the oldest enabled subscription existed (those events are owed to it), or at
-- the horizon when there is none. Starting at the horizon alone lost the events of a
-- subscription created before the dispatcher's first pass (a fresh install).
SELECT coalesce(
         (SELECT min(e.seq) - 1 FROM orchestrator.events e
           WHERE e.occurred_at >= (SELECT min(w.created_at) FROM orchestrator.webhooks w
                                    WHERE w.enabled)
             AND e.seq <= %(upto)s),
         %(upto)s) AS seq;

-- name: webhook_cursor_set
INSERT INTO orchestrator.webhook_cursor (id, seq, updated_at)
VALUES (true, %(seq)s, %(now)s)
ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at;

-- name: webhook_events_after
-- Events with after < seq <= upto of the tenants that have an enabled subscription, in seq
-- order (one index probe per such tenant).
SELECT e.*
  FROM (SELECT DISTINCT tenant FROM orchestrator.webhooks WHERE enabled) t
 CROSS JOIN LATERAL (
       SELECT seq, event_id, tenant, type, occurred_at, correlation_id, project,
              actor_subject, job_id, job_type, run_id, source_id, from_state, to_state,
              reason, attempt, data
         FROM orchestrator.events
        WHERE tenant = t.tenant AND seq > %(after)s AND seq <= %(upto)s
        ORDER BY seq LIMIT %(limit)s) e
 ORDER BY e.seq
 LIMIT %(limit)s;

-- name: webhook_enabled_of_tenants
SELECT id, tenant, event_types, source_id, job_type, created_at FROM orchestrator.webhooks
 WHERE enabled AND tenant = ANY(%(tenants)s);

-- name: webhook_delivery_insert_many
-- One delivery per {subscription, event}; a repeat inserts nothing.
INSERT INTO orchestrator.webhook_deliveries (id, tenant, webhook_id, event_seq, event_id,
                                             event_type, payload, state, next_attempt_at,
                                             created_at, updated_at)
SELECT d.id, d.tenant, d.webhook_id, d.event_seq, d.event_id, d.event_type, d.payload,
       'pending', %(now)s, %(now)s, %(now)s
  FROM unnest(%(ids)s::uuid[], %(tenants)s::text[], %(webhook_ids)s::uuid[],
              %(event_seqs)s::bigint[], %(event_ids)s::uuid[], %(event_types)s::text[],
              %(payloads)s::jsonb[])
       AS d (id, tenant, webhook_id, event_seq, event_id, event_type, payload)
ON CONFLICT (webhook_id, event_id) DO NOTHING;

-- name: webhook_attempt_claim
-- Due deliveries of enabled subscriptions (oldest due first, skipping rows another claim
-- holds) get their next attempt: attempt + 1, due again after the in-flight timeout (a
-- sender that dies leaves them to the next claim), an attempt row `sending`; an earlier
-- attempt still `sending` was lost. Secrets valid now come along (the previous one while
-- its rotation grace lasts).
WITH due AS (
  SELECT d.id FROM orchestrator.webhook_deliveries d
    JOIN orchestrator.webhooks w ON w.id = d.webhook_id
   WHERE d.state = 'pending' AND d.next_attempt_at <= %(now)s AND w.enabled
   ORDER BY d.next_attempt_at
   LIMIT %(limit)s
   FOR UPDATE OF d SKIP LOCKED
), claimed AS (
  UPDATE orchestrator.webhook_deliveries d
     SET attempt = d.attempt + 1,
         next_attempt_at = %(now)s + make_interval(secs => %(inflight_s)s),
         updated_at = %(now)s
    FROM due WHERE d.id = due.id
  RETURNING d.id, d.tenant, d.webhook_id, d.attempt, d.payload
), lost AS (
  UPDATE orchestrator.webhook_attempts a
     SET outcome = 'lost', finished_at = %(now)s, error = 'no outcome reported'
    FROM claimed c
   WHERE a.delivery_id = c.id AND a.attempt < c.attempt AND a.outcome = 'sending'
), started AS (
  INSERT INTO orchestrator.webhook_attempts (delivery_id, attempt, tenant, started_at, outcome)
  SELECT c.id, c.attempt, c.tenant, %(now)s, 'sending' FROM claimed c
)
SELECT c.id AS delivery_id, c.webhook_id, c.tenant, c.attempt, c.payload, w.url, w.secret,
       CASE WHEN w.previous_expires_at > %(now)s THEN w.previous_secret END AS previous_secret
  FROM claimed c JOIN orchestrator.webhooks w ON w.id = c.webhook_id;

-- name: webhook_attempt_finish
-- The outcome of a claimed attempt, fenced on its number (no row: the attempt is stale).
UPDATE orchestrator.webhook_deliveries
   SET state = CASE %(outcome)s WHEN 'succeeded' THEN 'succeeded'
                                WHEN 'failed' THEN 'failed' ELSE 'pending' END,
       next_attempt_at = %(next_attempt_at)s, status_code = %(status_code)s,
       latency_ms = %(latency_ms)s, error = %(error)s, updated_at = %(now)s
 WHERE id = %(delivery_id)s AND attempt = %(attempt)s AND state = 'pending'
RETURNING id;

-- name: webhook_attempt_record
UPDATE orchestrator.webhook_attempts
   SET outcome = %(outcome)s, finished_at = %(now)s, status_code = %(status_code)s,
       latency_ms = %(latency_ms)s, next_attempt_at = %(next_attempt_at)s, error = %(error)s
 WHERE delivery_id = %(delivery_id)s AND attempt = %(attempt)s;

-- name: webhook_streak_lock
-- Serialises the streak updates of concurrent attempts of one subscription (the update
-- below reads the streak in its subquery: without the lock, two would count from one value).
SELECT id FROM orchestrator.webhooks WHERE id = %(webhook_id)s FOR UPDATE;

-- name: webhook_streak_update
-- A 2xx ends the failure streak; a failure grows it, and the subscription is disabled (the
-- trigger writes webhook.disabled) once the streak is long enough and old enough.
UPDATE orchestrator.webhooks w
   SET failure_streak = s.streak,
       failing_since = s.since,
       enabled = w.enabled AND NOT s.disable,
       disabled_reason = CASE WHEN w.enabled AND s.disable THEN 'failure_streak'
                              ELSE w.disabled_reason END,
       updated_at = CASE WHEN w.enabled AND s.disable THEN %(now)s ELSE w.updated_at END
  FROM (SELECT id,
               CASE WHEN %(succeeded)s THEN 0 ELSE failure_streak + 1 END AS streak,
               CASE WHEN %(succeeded)s THEN NULL
                    ELSE coalesce(failing_since, %(now)s) END AS since,
               NOT %(succeeded)s AND failure_streak + 1 >= %(disable_streak)s
                 AND coalesce(failing_since, %(now)s)
                     <= %(now)s - make_interval(secs => %(disable_after_s)s) AS disable,
               enabled AS was_enabled
          FROM orchestrator.webhooks WHERE id = %(webhook_id)s) s
 WHERE w.id = s.id
RETURNING w.enabled, s.was_enabled AND s.disable AS disabled_now;
