-- 0006: the audit service — chain cursor, audit entries in the event history, secret
-- redaction of worker messages, and row-level security on every tenant table.
--
-- Chaining. The audit service appends every event to its tenant's hash chain
-- (audit_chain) in seq order once the transactions that could still write lower seqs have
-- ended; audit_cursor is the highest seq it has settled, written in the same transaction as
-- the links, so a restart resumes there and chains nothing twice.
CREATE TABLE orchestrator.audit_cursor (
  id         boolean PRIMARY KEY DEFAULT true CHECK (id),
  seq        bigint NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX audit_anchors_seq ON orchestrator.audit_anchors (tenant, anchored_at);

-- Operator actions are events too (type 'audit.<action>'), so they are chained like every
-- other event; the entry keeps the seq of its event.
ALTER TABLE orchestrator.audit_entries ADD COLUMN seq bigint;
CREATE INDEX audit_entries_tenant_seq ON orchestrator.audit_entries (tenant, seq);

CREATE FUNCTION orchestrator.audit_entries_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type, idempotency_key,
      actor_subject, actor_scopes, reason, data)
  VALUES (NEW.occurred_at, gen_random_uuid(), NEW.tenant, 'audit.' || NEW.action,
          'orch-audit-' || NEW.id, NEW.actor_subject, NEW.actor_scopes, NEW.reason,
          jsonb_build_object('entry_id', NEW.id, 'action', NEW.action, 'target', NEW.target,
                             'reason', NEW.reason, 'ticket', NEW.ticket))
  RETURNING seq INTO NEW.seq;
  PERFORM orchestrator.notify_events(NULL);
  RETURN NEW;
END
$$;
CREATE TRIGGER audit_entries_event BEFORE INSERT ON orchestrator.audit_entries
  FOR EACH ROW EXECUTE FUNCTION orchestrator.audit_entries_event();

-- Secret redaction of free text that workers and upstreams write (failure and progress
-- messages): credentials never reach the ledger, the events or bundles. Mirrors
-- orchestrator_core.redaction.redact_text (tests check they agree).
CREATE FUNCTION orchestrator.redact_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(t,
    '-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----', '[REDACTED]', 'g'),
    '(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}', '\1\2[REDACTED]', 'gi'),
    '(://[^/\s:@]+:)[^/\s@]+@', '\1[REDACTED]@', 'g'),
    'eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*', '[REDACTED]', 'g'),
    '((authorization|cookie|password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret)["'']?\s*[:=]\s*["'']?)(bearer\s+|basic\s+)?(\[REDACTED\]|[^\s"'',;&}]+)',
    '\1\3[REDACTED]', 'gi')
$$;

CREATE FUNCTION orchestrator.jobs_redact() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.last_error_message := orchestrator.redact_text(NEW.last_error_message);
  NEW.progress_message := orchestrator.redact_text(NEW.progress_message);
  RETURN NEW;
END
$$;
-- Only rows whose messages change pay for it (failures and progress, not claims/completions).
CREATE TRIGGER jobs_redact BEFORE UPDATE ON orchestrator.jobs FOR EACH ROW
  WHEN (NEW.last_error_message IS DISTINCT FROM OLD.last_error_message
        OR NEW.progress_message IS DISTINCT FROM OLD.progress_message)
  EXECUTE FUNCTION orchestrator.jobs_redact();

-- Row-level security: the second wall behind the services' own tenant filters. A
-- transaction that sets orchestrator.isolate_tenant (Database.transaction/reader for a
-- tenant-scoped ledger) sees and writes only that tenant's rows. Platform work that spans
-- tenants by design — fair-share claims filtered by the worker token's tenants, the lease
-- watchdog, partition maintenance, audit chaining — runs without it. FORCE makes the
-- policies bind the owning application role too.
CREATE FUNCTION orchestrator.tenant_visible(row_tenant text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(nullif(current_setting('orchestrator.isolate_tenant', true), ''), row_tenant) = row_tenant
$$;

ALTER TABLE orchestrator.sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.sources FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.sources
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.runs
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.jobs
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.dag_edges ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.dag_edges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.dag_edges
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.artifacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.artifacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.artifacts
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.quotas FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.quotas
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.schedules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.schedules
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.watermarks ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.watermarks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.watermarks
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.backfills ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.backfills FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.backfills
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.incidents ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.incidents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.incidents
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.throttles ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.throttles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.throttles
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.dead_letter ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.dead_letter FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.dead_letter
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.blackouts ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.blackouts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.blackouts
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.events
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.audit_chain FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.audit_chain
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.audit_anchors ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.audit_anchors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.audit_anchors
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.audit_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.audit_entries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.audit_entries
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
ALTER TABLE orchestrator.quota_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.quota_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.quota_usage
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
