-- 0010: incidents written by the system (issue 18, item 4).
--
-- A failure is one failed attempt of a job: a `job.retrying` or `job.dead` event whose error
-- class is not `http_429` (a throttled attempt: the upstream asked to slow down, the job did
-- not fail). Failures cluster by {tenant, job type, source, error class}. The scheduler's
-- incident pass (leader of LeaderLoop.INCIDENTS, orchestrator_scheduler/_incidents.py) reads
-- them from the event history after its cursor, in seq order, and
--   * keeps the recent failures of each cluster without an open incident in
--     incident_windows (fewer than the threshold per cluster, pruned past the window);
--   * opens an incident when a cluster holds `failure_threshold` failures within `window_s`,
--     then counts every further failure and keeps a few sample job ids;
--   * resolves it once `quiet_s` passed without a failure (resolved_at = last failure +
--     quiet period).
-- The cursor moves in the same transaction as those writes, under a row lock, so a pass
-- that raced another one (a deposed leader) re-reads the cursor and never counts twice.
-- Defaults (5 failures in 300 s, resolved after 600 s quiet) come from the scheduler's
-- settings; incident_policies overrides them per tenant (NULL: the default).
ALTER TABLE orchestrator.incidents ADD COLUMN resolved_at timestamptz;
ALTER TABLE orchestrator.incidents ADD COLUMN acknowledged_at timestamptz;
ALTER TABLE orchestrator.incidents ADD COLUMN acknowledged_by text NOT NULL DEFAULT '';
ALTER TABLE orchestrator.incidents ADD COLUMN acknowledge_reason text NOT NULL DEFAULT '';
-- At most one open incident per cluster (source NULL is a cluster of its own).
CREATE UNIQUE INDEX incidents_open_cluster ON orchestrator.incidents
  (tenant, job_type, coalesce(source_id, '00000000-0000-0000-0000-000000000000'::uuid),
   error_class) WHERE state = 'open';

CREATE TABLE orchestrator.incident_cursor (
  id         boolean PRIMARY KEY DEFAULT true CHECK (id),
  seq        bigint NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE orchestrator.incident_windows (
  tenant      text NOT NULL REFERENCES orchestrator.tenants (id),
  job_type    text NOT NULL,
  source_id   uuid,
  error_class text NOT NULL,
  job_id      uuid NOT NULL,
  failed_at   timestamptz NOT NULL
);
CREATE INDEX incident_windows_tenant ON orchestrator.incident_windows (tenant, failed_at);
CREATE INDEX incident_windows_failed_at ON orchestrator.incident_windows (failed_at);

CREATE TABLE orchestrator.incident_policies (
  tenant            text PRIMARY KEY REFERENCES orchestrator.tenants (id),
  failure_threshold integer CHECK (failure_threshold BETWEEN 1 AND 10000),
  window_s          integer CHECK (window_s BETWEEN 1 AND 86400),
  quiet_s           integer CHECK (quiet_s BETWEEN 1 AND 604800),
  updated_at        timestamptz NOT NULL
);

-- An incident's timeline: its incident.* events, found by incident id.
CREATE INDEX events_incident ON orchestrator.events ((data->>'incident_id'), seq)
  WHERE type LIKE 'incident.%';

-- incident.opened on insert (and incident.resolved when a lagging pass inserts one that is
-- already over); on update incident.updated each time the failure count passes a power of
-- two (5 -> 8 -> 16 ...: the row holds the live count, the history stays short),
-- incident.acknowledged and incident.resolved.
CREATE FUNCTION orchestrator.incident_event(i orchestrator.incidents, event_type text)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type, idempotency_key,
      actor_subject, actor_scopes, job_type, source_id, reason, data)
  VALUES (orchestrator.clock_now(), gen_random_uuid(), i.tenant, event_type,
          format('orch-%s-%s-%s', event_type, i.id, i.failure_count),
          coalesce(current_setting('orchestrator.actor_subject', true), ''),
          orchestrator.actor_scopes(), i.job_type, i.source_id,
          CASE WHEN event_type = 'incident.acknowledged' THEN i.acknowledge_reason END,
          jsonb_build_object('incident_id', i.id, 'state', i.state,
                             'error_class', i.error_class, 'reason_code', i.reason_code,
                             'failure_count', i.failure_count,
                             'sample_job_ids', i.sample_job_ids,
                             'first_seen_at', i.first_seen_at, 'last_seen_at', i.last_seen_at,
                             'resolved_at', i.resolved_at,
                             'acknowledged_by', i.acknowledged_by,
                             'acknowledge_reason', i.acknowledge_reason))
$$;

CREATE FUNCTION orchestrator.incidents_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM orchestrator.incident_event(n, k.type)
       FROM new_rows n
      CROSS JOIN LATERAL (VALUES (1, 'incident.opened'),
                                 (2, CASE WHEN n.state = 'resolved'
                                          THEN 'incident.resolved' END)) AS k (ord, type)
      WHERE k.type IS NOT NULL
      ORDER BY n.id, k.ord;
  ELSE
    -- length(ltrim(x::bit(64)::text, '0')) is x's bit length: it grows at each power of two
    PERFORM orchestrator.incident_event(n, k.type)
       FROM new_rows n JOIN old_rows o USING (id)
      CROSS JOIN LATERAL (VALUES
        (1, CASE WHEN length(ltrim(n.failure_count::bit(64)::text, '0'))
                      > length(ltrim(o.failure_count::bit(64)::text, '0'))
                 THEN 'incident.updated' END),
        (2, CASE WHEN o.acknowledged_at IS NULL AND n.acknowledged_at IS NOT NULL
                 THEN 'incident.acknowledged' END),
        (3, CASE WHEN o.state = 'open' AND n.state = 'resolved'
                 THEN 'incident.resolved' END)) AS k (ord, type)
      WHERE k.type IS NOT NULL
      ORDER BY n.id, k.ord;
  END IF;
  IF FOUND THEN
    PERFORM orchestrator.notify_events(NULL);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER incidents_outbox_insert AFTER INSERT ON orchestrator.incidents
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.incidents_outbox();
CREATE TRIGGER incidents_outbox_update AFTER UPDATE ON orchestrator.incidents
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.incidents_outbox();

ALTER TABLE orchestrator.incident_windows ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.incident_windows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.incident_windows
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.incident_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.incident_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.incident_policies
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
