-- 0013: webhooks (issue 21, item 1): per-tenant subscriptions, their deliveries and attempts,
-- and the dispatcher's cursor.
--
-- The scheduler's webhook dispatcher (leader of LeaderLoop.WEBHOOKS,
-- orchestrator_scheduler/_webhooks.py) reads committed events after its cursor (behind the
-- event horizon), in seq order, and inserts one delivery per {subscription, event} that
-- matches (unique: a second pass or a deposed leader inserts nothing twice), moving the
-- cursor in the same transaction under a row lock. Each delivery is then sent in attempts:
-- claiming an attempt increments `attempt` and inserts its webhook_attempts row in one
-- committed statement before any byte goes out, so an attempt number is sent at most once
-- (primary key {delivery, attempt}), and its outcome is written fenced on that number.
-- A claimed attempt whose outcome never came (a crashed sender) is due again at
-- next_attempt_at, as the next attempt. Deliveries write no events (no feedback loop);
-- a subscription that turns disabled writes `webhook.disabled`.
CREATE TABLE orchestrator.webhooks (
  id                  uuid PRIMARY KEY,
  tenant              text NOT NULL REFERENCES orchestrator.tenants (id),
  url                 text NOT NULL,
  event_types         text[] NOT NULL,
  source_id           uuid,
  job_type            text,
  description         text NOT NULL DEFAULT '',
  enabled             boolean NOT NULL DEFAULT true,
  disabled_reason     text NOT NULL DEFAULT '',
  -- "whsec_" + base64 of the key; the previous one stays valid until it expires (rotation)
  secret              text NOT NULL,
  previous_secret     text,
  previous_expires_at timestamptz,
  -- failed attempts since the last 2xx, and when the first of them failed
  failure_streak      integer NOT NULL DEFAULT 0,
  failing_since       timestamptz,
  created_by          text NOT NULL DEFAULT '',
  created_at          timestamptz NOT NULL,
  updated_at          timestamptz NOT NULL
);
CREATE INDEX webhooks_tenant ON orchestrator.webhooks (tenant, created_at, id);

CREATE TABLE orchestrator.webhook_deliveries (
  id              uuid PRIMARY KEY,
  tenant          text NOT NULL,
  webhook_id      uuid NOT NULL REFERENCES orchestrator.webhooks (id) ON DELETE CASCADE,
  event_seq       bigint NOT NULL,
  event_id        uuid NOT NULL,
  event_type      text NOT NULL,
  payload         jsonb NOT NULL,
  state           text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
  attempt         integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  status_code     integer,
  latency_ms      integer,
  error           text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON orchestrator.webhook_deliveries (next_attempt_at)
  WHERE state = 'pending';
CREATE INDEX webhook_deliveries_webhook ON orchestrator.webhook_deliveries
  (webhook_id, event_seq DESC);

CREATE TABLE orchestrator.webhook_attempts (
  delivery_id     uuid NOT NULL REFERENCES orchestrator.webhook_deliveries (id) ON DELETE CASCADE,
  attempt         integer NOT NULL,
  tenant          text NOT NULL,
  started_at      timestamptz NOT NULL,
  finished_at     timestamptz,
  status_code     integer,
  latency_ms      integer,
  -- sending: claimed, no outcome yet; succeeded: 2xx; retrying / failed: not 2xx (failed:
  -- no further attempt); lost: the sender never reported (the next attempt took over)
  outcome         text NOT NULL CHECK (outcome IN ('sending', 'succeeded', 'retrying', 'failed',
                                                   'lost')),
  next_attempt_at timestamptz,
  error           text NOT NULL DEFAULT '',
  PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE orchestrator.webhook_cursor (
  id         boolean PRIMARY KEY DEFAULT true CHECK (id),
  seq        bigint NOT NULL,
  updated_at timestamptz NOT NULL
);

-- webhook.disabled when a subscription turns disabled (a failure streak or an operator).
CREATE FUNCTION orchestrator.webhooks_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  written bigint;
BEGIN
  INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type, idempotency_key,
      actor_subject, actor_scopes, source_id, job_type, reason, data)
  SELECT orchestrator.clock_now(), gen_random_uuid(), n.tenant, 'webhook.disabled',
         format('orch-webhook.disabled-%s-%s', n.id, extract(epoch FROM n.updated_at)),
         coalesce(current_setting('orchestrator.actor_subject', true), ''),
         orchestrator.actor_scopes(), n.source_id, n.job_type, n.disabled_reason,
         jsonb_build_object('webhook_id', n.id, 'url', n.url,
                            'failure_streak', n.failure_streak,
                            'failing_since', n.failing_since,
                            'disabled_reason', n.disabled_reason)
    FROM new_rows n JOIN old_rows o USING (id)
   WHERE o.enabled AND NOT n.enabled
   ORDER BY n.id;
  GET DIAGNOSTICS written = ROW_COUNT;
  IF written > 0 THEN
    PERFORM orchestrator.notify_events(NULL);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER webhooks_outbox_update AFTER UPDATE ON orchestrator.webhooks
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.webhooks_outbox();

ALTER TABLE orchestrator.webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.webhooks
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.webhook_deliveries
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.webhook_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.webhook_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.webhook_attempts
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
