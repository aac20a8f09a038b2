-- The gateway's Idempotency-Key records (_idempotency.py), one row per
-- (tenant, caller, route, key). Every write after the claim presents the claim_id it got:
-- a request whose claim was taken over (its lock ran out) changes nothing.
-- %(now)s is NULL in production, so the database's clock is the one authority across
-- gateway replicas; tests pass a time to move it.

-- name: idempotency_keys_claim
-- The request owns the key when this returns a row: it inserted it, or took over a row that
-- expired, or one whose owner died (lock ran out, no answer) for the same request.
INSERT INTO orchestrator.idempotency_keys AS k
       (tenant, caller, route, key, fingerprint, claim_id, locked_until, created_at, expires_at)
VALUES (%(tenant)s, %(caller)s, %(route)s, %(key)s, %(fingerprint)s, %(claim_id)s,
        coalesce(%(now)s::timestamptz, now()) + make_interval(secs => %(lock_s)s),
        coalesce(%(now)s::timestamptz, now()),
        coalesce(%(now)s::timestamptz, now()) + make_interval(secs => %(ttl_s)s))
ON CONFLICT (tenant, caller, route, key) DO UPDATE
   SET fingerprint = EXCLUDED.fingerprint, claim_id = EXCLUDED.claim_id,
       locked_until = EXCLUDED.locked_until, status = NULL, headers = NULL, body = NULL,
       created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
 WHERE k.expires_at <= EXCLUDED.created_at
    OR (k.status IS NULL AND k.locked_until <= EXCLUDED.created_at
        AND k.fingerprint = EXCLUDED.fingerprint)
RETURNING k.claim_id;

-- name: idempotency_keys_get
-- The live record of a key (an expired one reads as absent).
SELECT fingerprint, status, headers, body
  FROM orchestrator.idempotency_keys
 WHERE tenant = %(tenant)s AND caller = %(caller)s AND route = %(route)s AND key = %(key)s
   AND expires_at > coalesce(%(now)s::timestamptz, now());

-- name: idempotency_keys_extend
-- The owner, still running, pushes its lock ahead; no row: the claim was lost.
UPDATE orchestrator.idempotency_keys
   SET locked_until = coalesce(%(now)s::timestamptz, now()) + make_interval(secs => %(lock_s)s)
 WHERE tenant = %(tenant)s AND caller = %(caller)s AND route = %(route)s AND key = %(key)s
   AND claim_id = %(claim_id)s AND status IS NULL
RETURNING claim_id;

-- name: idempotency_keys_finish
-- The owner stores the answer every replica replays from now on.
UPDATE orchestrator.idempotency_keys
   SET status = %(status)s, headers = %(headers)s, body = %(body)s,
       locked_until = coalesce(%(now)s::timestamptz, now())
 WHERE tenant = %(tenant)s AND caller = %(caller)s AND route = %(route)s AND key = %(key)s
   AND claim_id = %(claim_id)s AND status IS NULL
RETURNING claim_id;

-- name: idempotency_keys_release
-- The owner had no answer worth keeping (5xx, 429, none): forget the key, so a retry runs.
DELETE FROM orchestrator.idempotency_keys
 WHERE tenant = %(tenant)s AND caller = %(caller)s AND route = %(route)s AND key = %(key)s
   AND claim_id = %(claim_id)s AND status IS NULL;

-- name: idempotency_keys_purge
-- Up to %(limit)s expired rows, across tenants (the cleanup pass runs unisolated); a row
-- still being answered stays until its lock runs out.
WITH gone AS (
  DELETE FROM orchestrator.idempotency_keys
   WHERE (tenant, caller, route, key) IN (
           SELECT tenant, caller, route, key FROM orchestrator.idempotency_keys
            WHERE expires_at <= coalesce(%(now)s::timestamptz, now())
              AND (status IS NOT NULL OR locked_until <= coalesce(%(now)s::timestamptz, now()))
            LIMIT %(limit)s
              FOR UPDATE SKIP LOCKED)
  RETURNING 1)
SELECT count(*) AS deleted FROM gone;
