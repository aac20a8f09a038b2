-- Throttles: bucket changes after upstream 429/5xx and by operators (the outbox trigger
-- turns each into a throttle.changed event). Bucket state itself lives in Redis.

-- name: throttle_insert
INSERT INTO orchestrator.throttles (id, tenant, source_id, host, origin, refill_per_second,
                                    capacity, effective_refill_per_second, paused_until,
                                    reason, ticket, created_by, created_at, expires_at, job_id)
VALUES (%(id)s, %(tenant)s, %(source_id)s, %(host)s, %(origin)s, %(refill_per_second)s,
        %(capacity)s, %(effective_refill_per_second)s, %(paused_until)s,
        %(reason)s, %(ticket)s, %(created_by)s, %(now)s, %(expires_at)s, %(job_id)s)
RETURNING *;

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
