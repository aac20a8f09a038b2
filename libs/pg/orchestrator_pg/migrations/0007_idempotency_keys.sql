-- 0007: the gateway's Idempotency-Key records, shared by every gateway replica.
--
-- One row per (tenant, caller, route, key): the caller is the token's subject, the route the
-- request path. The first request to insert the row owns it (claim_id) while it runs; the
-- owner keeps locked_until ahead of now and, when the answer is complete, stores it (status,
-- headers, body). Any replica replays a stored answer until expires_at; a duplicate that
-- arrives while the first runs waits for it. An owner that died leaves a row whose lock ran
-- out: the next request with the same body takes it over. Rows past expires_at are treated
-- as absent and deleted by the gateway's cleanup pass (LeaderLoop.IDEMPOTENCY_KEYS).
CREATE TABLE orchestrator.idempotency_keys (
  tenant       text NOT NULL,
  caller       text NOT NULL,
  route        text NOT NULL,
  key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  fingerprint  bytea NOT NULL,
  claim_id     uuid NOT NULL,
  locked_until timestamptz NOT NULL,
  status       integer CHECK (status BETWEEN 100 AND 599),
  headers      jsonb,
  body         bytea,
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL,
  PRIMARY KEY (tenant, caller, route, key)
);
CREATE INDEX idempotency_keys_expires ON orchestrator.idempotency_keys (expires_at);

ALTER TABLE orchestrator.idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.idempotency_keys
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));
