-- 0003: rate limiting (ratelimit service).
--
-- Blackout windows: no job of a source (source_id set) or of the whole tenant (source_id
-- NULL) is leased while one is active. Without recurrence a blackout is the single range
-- [start_at, end_at); with one, occurrences begin at or after start_at and every occurrence
-- is clipped to [start_at, end_at) (end_at NULL = open ended). recurrence is
-- {"weekly": {"days": [1..7 ISO], "start_minute_utc": 0..1439, "duration_s": n}}.
CREATE TABLE orchestrator.blackouts (
  id          uuid PRIMARY KEY,
  tenant      text NOT NULL REFERENCES orchestrator.tenants (id),
  source_id   uuid REFERENCES orchestrator.sources (id),
  start_at    timestamptz NOT NULL,
  end_at      timestamptz,
  recurrence  jsonb,
  reason      text NOT NULL DEFAULT '',
  ticket      text NOT NULL DEFAULT '',
  created_by  text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL,
  CHECK (end_at IS NULL OR end_at > start_at),
  CHECK (recurrence IS NOT NULL OR end_at IS NOT NULL)
);
CREATE INDEX blackouts_tenant_id ON orchestrator.blackouts (tenant, id);

-- The job that observed an upstream throttle (ReportThrottle.job_id), when one did.
ALTER TABLE orchestrator.throttles ADD COLUMN job_id uuid;

-- Every throttle change (upstream 429/503, operator override, recovery) is an event in the
-- same transaction as its throttles row.
CREATE FUNCTION orchestrator.throttles_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  written bigint;
BEGIN
  INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type, idempotency_key,
      actor_subject, actor_scopes, source_id, reason, data)
  SELECT orchestrator.clock_now(), gen_random_uuid(), n.tenant, 'throttle.changed',
         format('orch-throttle-%s', n.id),
         coalesce(current_setting('orchestrator.actor_subject', true), ''),
         orchestrator.actor_scopes(), n.source_id, n.reason,
         jsonb_build_object('throttle_id', n.id, 'host', n.host, 'origin', n.origin,
                            'capacity', n.capacity, 'refill_per_second', n.refill_per_second,
                            'effective_refill_per_second', n.effective_refill_per_second,
                            'paused_until', n.paused_until, 'reason', n.reason,
                            'ticket', n.ticket, 'expires_at', n.expires_at,
                            'job_id', n.job_id)
    FROM new_rows n
   ORDER BY n.id;
  GET DIAGNOSTICS written = ROW_COUNT;
  IF written > 0 THEN
    PERFORM orchestrator.notify_events(NULL);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER throttles_outbox_insert AFTER INSERT ON orchestrator.throttles
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.throttles_outbox();
