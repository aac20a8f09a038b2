-- schema.sql: the schema truth. All migrations applied in order must produce exactly this
-- schema (tests/migration/test_schema_equivalence.py). Change it together with a new migration.
--
-- The event history is written by statement-level triggers, so no code path can change a
-- job, run or source without its event landing in the same transaction: one event per
-- transition, then one NOTIFY per statement.
--
-- Per-transaction context the services set with set_config(..., true):
--   orchestrator.actor_subject, orchestrator.actor_scopes (comma separated),
--   orchestrator.now (ISO timestamp: the injected clock; empty = now()).

CREATE SCHEMA IF NOT EXISTS orchestrator;

-- The injected clock, usable in SQL and in triggers (STYLE rule 7).
CREATE FUNCTION orchestrator.clock_now() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('orchestrator.now', true), '')::timestamptz, now())
$$;

CREATE TABLE orchestrator.tenants (
  id           text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  display_name text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now(),
  -- share of the worker slots against other tenants with ready jobs (migration 0011)
  weight       integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000)
);

CREATE TABLE orchestrator.sources (
  id            uuid PRIMARY KEY,
  tenant        text NOT NULL REFERENCES orchestrator.tenants (id),
  name          text NOT NULL,
  source_type   text NOT NULL,
  host          text NOT NULL,
  base_url      text NOT NULL DEFAULT '',
  enabled       boolean NOT NULL DEFAULT true,
  paused        boolean NOT NULL DEFAULT false,
  paused_reason text NOT NULL DEFAULT '',
  paused_ticket text NOT NULL DEFAULT '',
  job_types     text[] NOT NULL DEFAULT '{}',
  labels        jsonb NOT NULL DEFAULT '{}',
  version       bigint NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL,
  deleted_at    timestamptz
);
CREATE UNIQUE INDEX sources_tenant_name ON orchestrator.sources (tenant, name) WHERE deleted_at IS NULL;
CREATE INDEX sources_tenant_id ON orchestrator.sources (tenant, id);

CREATE TABLE orchestrator.runs (
  id              uuid PRIMARY KEY,
  tenant          text NOT NULL REFERENCES orchestrator.tenants (id),
  project         text NOT NULL DEFAULT '',
  name            text NOT NULL DEFAULT '',
  source_id       uuid REFERENCES orchestrator.sources (id),
  state           text NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'canceled')),
  correlation_id  text NOT NULL DEFAULT '',
  idempotency_key text,
  labels          jsonb NOT NULL DEFAULT '{}',
  schedule_id     uuid,
  backfill_id     uuid,
  job_total       integer NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  started_at      timestamptz,
  finished_at     timestamptz
);
CREATE UNIQUE INDEX runs_tenant_idempotency ON orchestrator.runs (tenant, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_tenant_id ON orchestrator.runs (tenant, id);
CREATE INDEX runs_tenant_state ON orchestrator.runs (tenant, state, id);

CREATE TABLE orchestrator.jobs (
  id                   uuid PRIMARY KEY,
  tenant               text NOT NULL REFERENCES orchestrator.tenants (id),
  project              text NOT NULL DEFAULT '',
  run_id               uuid REFERENCES orchestrator.runs (id),
  source_id            uuid REFERENCES orchestrator.sources (id),
  job_type             text NOT NULL,
  key                  text NOT NULL DEFAULT '',
  state                text NOT NULL CHECK (state IN ('pending', 'ready', 'leased', 'succeeded', 'dead', 'canceled')),
  reason               text NOT NULL,
  priority             integer NOT NULL DEFAULT 0,
  idempotency_key      text,
  correlation_id       text NOT NULL DEFAULT '',
  payload              jsonb NOT NULL DEFAULT '{}',
  payload_digest       text NOT NULL CHECK (payload_digest ~ '^sha256:[0-9a-f]{64}$'),
  -- parents that have not succeeded yet; the job turns ready when it reaches 0
  pending_parents      integer NOT NULL DEFAULT 0 CHECK (pending_parents >= 0),
  attempt              integer NOT NULL DEFAULT 0,
  max_attempts         integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
  initial_backoff_s    double precision NOT NULL,
  max_backoff_s        double precision NOT NULL,
  backoff_multiplier   double precision NOT NULL,
  not_before           timestamptz NOT NULL,
  lease_id             uuid,
  worker_id            text,
  leased_at            timestamptz,
  lease_expires_at     timestamptz,
  event_window_start   timestamptz,
  event_window_end     timestamptz,
  replay_of            uuid,
  last_error_class     text,
  last_error_message   text,
  last_error_retryable boolean,
  progress_percent     double precision,
  progress_message     text,
  result               jsonb,
  result_digest        text,
  trace_parent         text NOT NULL DEFAULT '',
  trace_state          text NOT NULL DEFAULT '',
  last_heartbeat_at    timestamptz,
  labels               jsonb NOT NULL DEFAULT '{}',
  created_at           timestamptz NOT NULL,
  updated_at           timestamptz NOT NULL,
  started_at           timestamptz,
  finished_at          timestamptz,
  -- attempts that ended in an upstream 429: they spend none of max_attempts (issue 15)
  throttled_attempts   integer NOT NULL DEFAULT 0 CHECK (throttled_attempts >= 0)
);
CREATE UNIQUE INDEX jobs_tenant_idempotency ON orchestrator.jobs (tenant, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_tenant_id ON orchestrator.jobs (tenant, id);
CREATE INDEX jobs_tenant_state ON orchestrator.jobs (tenant, state, id);
CREATE INDEX jobs_run ON orchestrator.jobs (run_id, id) WHERE run_id IS NOT NULL;
-- a key names one job of its run (depends_on resolves keys)
CREATE UNIQUE INDEX jobs_run_key ON orchestrator.jobs (run_id, key)
  WHERE run_id IS NOT NULL AND key <> '';
-- the run finishes when no job of it is left in a non-terminal state
CREATE INDEX jobs_run_open ON orchestrator.jobs (run_id)
  WHERE state IN ('pending', 'ready', 'leased');
CREATE INDEX jobs_lease_expiry ON orchestrator.jobs (lease_expires_at) WHERE state = 'leased';

CREATE TABLE orchestrator.dag_edges (
  tenant        text NOT NULL REFERENCES orchestrator.tenants (id),
  run_id        uuid REFERENCES orchestrator.runs (id),
  parent_job_id uuid NOT NULL REFERENCES orchestrator.jobs (id),
  child_job_id  uuid NOT NULL REFERENCES orchestrator.jobs (id),
  PRIMARY KEY (parent_job_id, child_job_id),
  CHECK (parent_job_id <> child_job_id)
);
CREATE INDEX dag_edges_child ON orchestrator.dag_edges (child_job_id);
CREATE INDEX dag_edges_run ON orchestrator.dag_edges (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE orchestrator.artifacts (
  id         uuid PRIMARY KEY,
  tenant     text NOT NULL REFERENCES orchestrator.tenants (id),
  job_id     uuid NOT NULL REFERENCES orchestrator.jobs (id),
  run_id     uuid REFERENCES orchestrator.runs (id),
  attempt    integer NOT NULL,
  name       text NOT NULL,
  media_type text NOT NULL DEFAULT 'application/octet-stream',
  size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
  digest     text NOT NULL CHECK (digest ~ '^sha256:[0-9a-f]{64}$'),
  uri        text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL,
  UNIQUE (job_id, attempt, name)
);
CREATE INDEX artifacts_tenant_digest ON orchestrator.artifacts (tenant, digest);
CREATE INDEX artifacts_job ON orchestrator.artifacts (job_id);

CREATE TABLE orchestrator.quotas (
  id           uuid PRIMARY KEY,
  tenant       text NOT NULL REFERENCES orchestrator.tenants (id),
  job_type     text NOT NULL DEFAULT '',  -- '' = the whole tenant
  max_active   integer,
  max_per_hour integer,
  burst        integer,
  max_queued   integer,
  paused       boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL,
  UNIQUE (tenant, job_type)
);

CREATE TABLE orchestrator.schedules (
  id               uuid PRIMARY KEY,
  tenant           text NOT NULL REFERENCES orchestrator.tenants (id),
  name             text NOT NULL,
  cron             text NOT NULL,
  source_id        uuid REFERENCES orchestrator.sources (id),
  run_template     jsonb NOT NULL,
  catch_up         text NOT NULL DEFAULT 'skip' CHECK (catch_up IN ('skip', 'one', 'all')),
  catch_up_window  interval NOT NULL DEFAULT '1 hour',
  overlap          text NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'buffer_one', 'allow')),
  enabled          boolean NOT NULL DEFAULT true,
  next_fire_at     timestamptz,
  last_fire_at     timestamptz,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL,
  UNIQUE (tenant, name)
);
CREATE INDEX schedules_due ON orchestrator.schedules (next_fire_at) WHERE enabled;

CREATE TABLE orchestrator.watermarks (
  tenant         text NOT NULL REFERENCES orchestrator.tenants (id),
  source_id      uuid NOT NULL REFERENCES orchestrator.sources (id),
  job_type       text NOT NULL,
  high_watermark timestamptz NOT NULL,
  last_job_id    uuid,
  updated_at     timestamptz NOT NULL,
  PRIMARY KEY (tenant, source_id, job_type)
);

CREATE TABLE orchestrator.backfills (
  id                      uuid PRIMARY KEY,
  tenant                  text NOT NULL REFERENCES orchestrator.tenants (id),
  source_id               uuid NOT NULL REFERENCES orchestrator.sources (id),
  job_type                text NOT NULL,
  range_start             timestamptz NOT NULL,
  range_end               timestamptz NOT NULL CHECK (range_end > range_start),
  window_size             interval NOT NULL,
  priority                integer NOT NULL DEFAULT -10,
  state                   text NOT NULL CHECK (state IN ('planned', 'running', 'succeeded', 'failed', 'canceled')),
  reason                  text NOT NULL CHECK (reason <> ''),
  ticket                  text NOT NULL DEFAULT '',
  run_id                  uuid REFERENCES orchestrator.runs (id),
  window_count            integer NOT NULL DEFAULT 0,
  suppressed_window_count integer NOT NULL DEFAULT 0,
  created_by              text NOT NULL,
  created_at              timestamptz NOT NULL,
  updated_at              timestamptz NOT NULL
);
CREATE INDEX backfills_tenant_source ON orchestrator.backfills (tenant, source_id, job_type, state);

CREATE TABLE orchestrator.incidents (
  id            uuid PRIMARY KEY,
  tenant        text NOT NULL REFERENCES orchestrator.tenants (id),
  error_class   text NOT NULL,
  source_id     uuid REFERENCES orchestrator.sources (id),
  job_type      text NOT NULL DEFAULT '',
  state         text NOT NULL CHECK (state IN ('open', 'resolved')),
  reason_code   text NOT NULL,
  failure_count bigint NOT NULL DEFAULT 0,
  sample_job_ids uuid[] NOT NULL DEFAULT '{}',
  first_seen_at timestamptz NOT NULL,
  last_seen_at  timestamptz NOT NULL
);
CREATE INDEX incidents_tenant_state ON orchestrator.incidents (tenant, state, last_seen_at DESC);

CREATE TABLE orchestrator.throttles (
  id                  uuid PRIMARY KEY,
  tenant              text NOT NULL REFERENCES orchestrator.tenants (id),
  source_id           uuid REFERENCES orchestrator.sources (id),
  host                text NOT NULL,
  origin              text NOT NULL CHECK (origin IN ('upstream_429', 'upstream_503', 'operator', 'recovery')),
  refill_per_second   double precision NOT NULL,
  capacity            double precision NOT NULL,
  effective_refill_per_second double precision NOT NULL,
  paused_until        timestamptz,
  reason              text NOT NULL DEFAULT '',
  ticket              text NOT NULL DEFAULT '',
  created_by          text NOT NULL DEFAULT '',
  created_at          timestamptz NOT NULL,
  expires_at          timestamptz
);
CREATE INDEX throttles_tenant_time ON orchestrator.throttles (tenant, created_at, id);

CREATE TABLE orchestrator.dead_letter (
  id            uuid PRIMARY KEY,
  tenant        text NOT NULL REFERENCES orchestrator.tenants (id),
  job_id        uuid NOT NULL REFERENCES orchestrator.jobs (id),
  job_type      text NOT NULL,
  source_id     uuid REFERENCES orchestrator.sources (id),
  run_id        uuid REFERENCES orchestrator.runs (id),
  error_class   text NOT NULL,
  last_error    text NOT NULL DEFAULT '',
  attempts      integer NOT NULL,
  retryable     boolean NOT NULL,
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'replayed', 'resolved', 'discarded')),
  failed_at     timestamptz NOT NULL,
  resolved_by   text,
  resolution_reason text,
  resolved_at   timestamptz
);
CREATE INDEX dead_letter_tenant_status ON orchestrator.dead_letter (tenant, status, error_class, failed_at);
CREATE INDEX dead_letter_job ON orchestrator.dead_letter (job_id);

-- The event history (transactional outbox). Range partitioned by time so retention drops
-- whole partitions; `seq` is global and is the resume point of every live stream.
CREATE SEQUENCE orchestrator.events_seq AS bigint;
CREATE TABLE orchestrator.events (
  seq             bigint NOT NULL DEFAULT nextval('orchestrator.events_seq'),
  occurred_at     timestamptz NOT NULL,
  event_id        uuid NOT NULL,
  tenant          text NOT NULL,
  type            text NOT NULL,
  idempotency_key text NOT NULL,
  correlation_id  text NOT NULL DEFAULT '',
  project         text NOT NULL DEFAULT '',
  actor_subject   text NOT NULL DEFAULT '',
  actor_scopes    text[] NOT NULL DEFAULT '{}',
  job_id          uuid,
  job_type        text,
  run_id          uuid,
  source_id       uuid,
  from_state      text,
  to_state        text,
  reason          text,
  attempt         integer,
  lease_id        uuid,
  data            jsonb NOT NULL DEFAULT '{}',
  PRIMARY KEY (occurred_at, seq)
) PARTITION BY RANGE (occurred_at);
CREATE TABLE orchestrator.events_default PARTITION OF orchestrator.events DEFAULT;
CREATE INDEX events_tenant_seq ON orchestrator.events (tenant, seq);
CREATE INDEX events_job ON orchestrator.events (job_id, seq) WHERE job_id IS NOT NULL;
CREATE INDEX events_run ON orchestrator.events (run_id, seq) WHERE run_id IS NOT NULL;

-- The audit hash chain (written by the audit service): one row per chained event.
CREATE TABLE orchestrator.audit_chain (
  tenant     text NOT NULL,
  seq        bigint NOT NULL,
  event_id   uuid NOT NULL,
  prev_hash  text NOT NULL,
  hash       text NOT NULL,
  chained_at timestamptz NOT NULL,
  PRIMARY KEY (tenant, seq)
);
-- Anchors survive event retention: verification restarts from the newest anchor.
CREATE TABLE orchestrator.audit_anchors (
  tenant      text NOT NULL,
  seq         bigint NOT NULL,
  hash        text NOT NULL,
  anchored_at timestamptz NOT NULL,
  PRIMARY KEY (tenant, seq)
);

-- Operator actions with actor, scopes, reason and ticket.
CREATE TABLE orchestrator.audit_entries (
  id            uuid PRIMARY KEY,
  tenant        text NOT NULL REFERENCES orchestrator.tenants (id),
  actor_subject text NOT NULL,
  actor_scopes  text[] NOT NULL DEFAULT '{}',
  action        text NOT NULL,
  target        text NOT NULL,
  reason        text NOT NULL DEFAULT '',
  ticket        text NOT NULL DEFAULT '',
  occurred_at   timestamptz NOT NULL
);
CREATE INDEX audit_entries_tenant_time ON orchestrator.audit_entries (tenant, occurred_at, id);

---------------------------------------------------------------------------------------------
-- The outbox triggers.

CREATE FUNCTION orchestrator.actor_scopes() RETURNS text[]
LANGUAGE sql STABLE AS $$
  SELECT coalesce(string_to_array(nullif(current_setting('orchestrator.actor_scopes', true), ''), ','), '{}')
$$;

-- The event type of a job transition; mirrors orchestrator_core.states.event_type_for
-- (tests/integration check they agree). NULL means the transition is illegal.
CREATE FUNCTION orchestrator.job_event_type(from_state text, to_state text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN from_state IS NULL AND to_state IN ('pending', 'ready') THEN 'job.created'
    WHEN from_state = 'pending' AND to_state = 'ready' THEN 'job.ready'
    WHEN from_state = 'ready' AND to_state = 'leased' THEN 'job.leased'
    WHEN from_state = 'leased' AND to_state = 'ready' THEN 'job.retrying'
    WHEN from_state = 'dead' AND to_state = 'ready' THEN 'job.retried'
    WHEN from_state = 'leased' AND to_state = 'succeeded' THEN 'job.succeeded'
    WHEN from_state IN ('ready', 'leased') AND to_state = 'dead' THEN 'job.dead'
    WHEN from_state IN ('pending', 'ready', 'leased') AND to_state = 'canceled' THEN 'job.canceled'
    WHEN from_state = 'canceled' AND to_state IN ('pending', 'ready') THEN 'job.revived'
  END
$$;

-- One NOTIFY per statement that wrote events: `orch_events` carries the highest seq written
-- (live streams and the audit chain catch up from their last seq; within a session the
-- sequence only grows, so currval is this statement's highest). `orch_jobs_ready` carries
-- the job types that became claimable, so waiting lease streams wake without polling.
-- Called by the outbox triggers, which know whether they wrote anything.
CREATE FUNCTION orchestrator.notify_events(ready_types text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('orch_events', currval('orchestrator.events_seq')::text);
  IF ready_types IS NOT NULL THEN
    PERFORM pg_notify('orch_jobs_ready', ready_types);
  END IF;
END
$$;

-- Set-based: one INSERT … SELECT per statement over the transition tables. The actor, scopes
-- and clock are read once per statement, the event type once per row.
CREATE FUNCTION orchestrator.jobs_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  illegal text;
  written bigint;
  ready_types text;
  actor text := coalesce(current_setting('orchestrator.actor_subject', true), '');
  scopes text[] := orchestrator.actor_scopes();
  at timestamptz := orchestrator.clock_now();
BEGIN
  IF TG_OP = 'UPDATE' THEN
    SELECT format('job %s cannot go from %s to %s', n.id, o.state, n.state) INTO illegal
      FROM new_rows n JOIN old_rows o USING (id)
     WHERE o.state IS DISTINCT FROM n.state
       AND orchestrator.job_event_type(o.state, n.state) IS NULL
     LIMIT 1;
    IF illegal IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = 'OR001', MESSAGE = illegal;
    END IF;
    INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type, idempotency_key,
        correlation_id, project, actor_subject, actor_scopes, job_id, job_type, run_id,
        source_id, from_state, to_state, reason, attempt, lease_id, data)
    SELECT at, gen_random_uuid(), t.tenant, t.type,
           'orch-' || t.type || '-' || t.id || '-' || t.attempt,
           t.correlation_id, t.project, actor, scopes, t.id, t.job_type, t.run_id,
           t.source_id, t.from_state, t.state, t.reason, t.attempt, t.lease_id,
           CASE t.state
             WHEN 'leased' THEN jsonb_build_object('worker_id', t.worker_id,
                                                   'lease_expires_at', t.lease_expires_at)
             WHEN 'ready' THEN CASE WHEN t.from_state = 'leased'
               THEN jsonb_build_object('not_before', t.not_before, 'error_class',
                                       t.last_error_class, 'error_message', t.last_error_message,
                                       'worker_id', t.old_worker_id)
               ELSE jsonb_build_object('not_before', t.not_before) END
             WHEN 'dead' THEN jsonb_build_object('error_class', t.last_error_class,
                                                 'error_message', t.last_error_message)
             ELSE '{}'::jsonb
           END
      FROM (SELECT n.id, n.tenant, n.state, n.reason, n.attempt, n.correlation_id, n.project,
                   n.job_type, n.run_id, n.source_id, n.worker_id, n.lease_expires_at,
                   n.not_before, n.last_error_class, n.last_error_message,
                   coalesce(n.lease_id, o.lease_id) AS lease_id, o.worker_id AS old_worker_id,
                   o.state AS from_state, orchestrator.job_event_type(o.state, n.state) AS type
              FROM new_rows n JOIN old_rows o USING (id)
             WHERE o.state IS DISTINCT FROM n.state) t
     ORDER BY t.id;
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written > 0 THEN
      SELECT string_agg(DISTINCT n.job_type, ',') INTO ready_types
        FROM new_rows n JOIN old_rows o USING (id)
       WHERE n.state = 'ready' AND o.state <> 'ready';
      PERFORM orchestrator.notify_events(ready_types);
    END IF;
  ELSE
    SELECT format('job %s cannot be created in state %s', n.id, n.state) INTO illegal
      FROM new_rows n
     WHERE orchestrator.job_event_type(NULL, n.state) IS NULL
     LIMIT 1;
    IF illegal IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = 'OR001', MESSAGE = illegal;
    END IF;
    INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type, idempotency_key,
        correlation_id, project, actor_subject, actor_scopes, job_id, job_type, run_id,
        source_id, from_state, to_state, reason, attempt, lease_id, data)
    SELECT at, gen_random_uuid(), n.tenant, 'job.created', 'orch-job.created-' || n.id || '-0',
           n.correlation_id, n.project, actor, scopes,
           n.id, n.job_type, n.run_id, n.source_id, NULL, n.state, n.reason, n.attempt, NULL,
           jsonb_strip_nulls(jsonb_build_object(
             'key', nullif(n.key, ''), 'priority', n.priority,
             'payload_digest', n.payload_digest,
             'idempotency_key', n.idempotency_key, 'max_attempts', n.max_attempts,
             'not_before', n.not_before, 'replay_of', n.replay_of,
             'event_window_start', n.event_window_start,
             'event_window_end', n.event_window_end))
      FROM new_rows n
     ORDER BY n.id;
    GET DIAGNOSTICS written = ROW_COUNT;
    IF written > 0 THEN
      SELECT string_agg(DISTINCT n.job_type, ',') INTO ready_types
        FROM new_rows n WHERE n.state = 'ready';
      PERFORM orchestrator.notify_events(ready_types);
    END IF;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER jobs_outbox_insert AFTER INSERT ON orchestrator.jobs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.jobs_outbox();
CREATE TRIGGER jobs_outbox_update AFTER UPDATE ON orchestrator.jobs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.jobs_outbox();

CREATE FUNCTION orchestrator.runs_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  written bigint;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type, idempotency_key,
        correlation_id, project, actor_subject, actor_scopes, run_id, source_id,
        from_state, to_state, data)
    SELECT orchestrator.clock_now(), gen_random_uuid(), n.tenant, 'run.' || n.state,
           format('orch-run.%s-%s', n.state, n.id), n.correlation_id, n.project,
           coalesce(current_setting('orchestrator.actor_subject', true), ''),
           orchestrator.actor_scopes(), n.id, n.source_id, o.state, n.state, '{}'
      FROM new_rows n JOIN old_rows o USING (id)
     WHERE o.state IS DISTINCT FROM n.state
     ORDER BY n.id;
  ELSE
    INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type, idempotency_key,
        correlation_id, project, actor_subject, actor_scopes, run_id, source_id,
        from_state, to_state, data)
    SELECT orchestrator.clock_now(), gen_random_uuid(), n.tenant, 'run.created',
           format('orch-run.created-%s', n.id), n.correlation_id, n.project,
           coalesce(current_setting('orchestrator.actor_subject', true), ''),
           orchestrator.actor_scopes(), n.id, n.source_id, NULL, n.state,
           jsonb_build_object('name', n.name, 'job_total', n.job_total)
      FROM new_rows n
     ORDER BY n.id;
  END IF;
  GET DIAGNOSTICS written = ROW_COUNT;
  IF written > 0 THEN
    PERFORM orchestrator.notify_events(NULL);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER runs_outbox_insert AFTER INSERT ON orchestrator.runs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.runs_outbox();
CREATE TRIGGER runs_outbox_update AFTER UPDATE ON orchestrator.runs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.runs_outbox();

CREATE FUNCTION orchestrator.sources_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  written bigint;
BEGIN
  INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type, idempotency_key,
      actor_subject, actor_scopes, source_id, data)
  SELECT orchestrator.clock_now(), gen_random_uuid(), n.tenant,
         CASE WHEN TG_OP = 'INSERT' THEN 'source.created'
              WHEN n.deleted_at IS NOT NULL THEN 'source.deleted'
              ELSE 'source.updated' END,
         format('orch-source-%s-%s', n.id, n.version),
         coalesce(current_setting('orchestrator.actor_subject', true), ''),
         orchestrator.actor_scopes(), n.id,
         jsonb_build_object('name', n.name, 'host', n.host, 'enabled', n.enabled,
                            'paused', n.paused, 'version', n.version)
    FROM new_rows n
   ORDER BY n.id;
  GET DIAGNOSTICS written = ROW_COUNT;
  IF written > 0 THEN
    PERFORM orchestrator.notify_events(NULL);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER sources_outbox_insert AFTER INSERT ON orchestrator.sources
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.sources_outbox();
CREATE TRIGGER sources_outbox_update AFTER UPDATE ON orchestrator.sources
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.sources_outbox();

---------------------------------------------------------------------------------------------
-- Partition maintenance for the event history: daily partitions [day, day + 1).

-- Days are UTC days whatever the session's time zone (the function pins it).
CREATE FUNCTION orchestrator.events_ensure_partitions(p_from date, p_days integer) RETURNS integer
LANGUAGE plpgsql SET TimeZone = 'UTC' AS $$
DECLARE
  d date;
  part text;
  created integer := 0;
BEGIN
  FOR i IN 0 .. p_days - 1 LOOP
    d := p_from + i;
    part := format('events_%s', to_char(d, 'YYYYMMDD'));
    CONTINUE WHEN to_regclass(format('orchestrator.%I', part)) IS NOT NULL;
    -- Rows that already landed in the default partition for this day move into the new one,
    -- otherwise ATTACH would refuse.
    EXECUTE format('CREATE TABLE orchestrator.%I (LIKE orchestrator.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('WITH moved AS (DELETE FROM orchestrator.events_default WHERE occurred_at >= %L AND occurred_at < %L RETURNING *) INSERT INTO orchestrator.%I SELECT * FROM moved', d, d + 1, part);
    EXECUTE format('ALTER TABLE orchestrator.events ATTACH PARTITION orchestrator.%I FOR VALUES FROM (%L) TO (%L)', part, d, d + 1);
    created := created + 1;
  END LOOP;
  RETURN created;
END
$$;

-- Drops daily partitions that end at or before p_cutoff and whose every event is at or
-- below p_max_seq (what the audit chain has anchored), so retention never loses an event
-- that is not yet chained. Returns the names dropped.
CREATE FUNCTION orchestrator.events_drop_partitions(p_cutoff date, p_max_seq bigint) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  r record;
  top bigint;
BEGIN
  FOR r IN
    SELECT c.relname AS name, to_date(substr(c.relname, 8), 'YYYYMMDD') AS day
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_class p ON p.oid = i.inhparent
      JOIN pg_namespace n ON n.oid = p.relnamespace
     WHERE n.nspname = 'orchestrator' AND p.relname = 'events' AND c.relname ~ '^events_[0-9]{8}$'
     ORDER BY c.relname
  LOOP
    CONTINUE WHEN r.day + 1 > p_cutoff;
    EXECUTE format('SELECT max(seq) FROM orchestrator.%I', r.name) INTO top;
    CONTINUE WHEN top IS NOT NULL AND top > p_max_seq;
    EXECUTE format('DROP TABLE orchestrator.%I', r.name);
    RETURN NEXT r.name;
  END LOOP;
END
$$;

-- 0002: the fair claim path of the leases service (see migrations/0002_leasing.sql): the
-- claim's only index on jobs (0009 dropped the tenant-spanning one).
CREATE INDEX jobs_claimable_tenant ON orchestrator.jobs (tenant, job_type, priority DESC, id)
  WHERE state = 'ready';

-- 0003: rate limiting (see migrations/0003_ratelimit.sql).
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

-- 0004: tenant quotas (operator reason and ticket) and submit-time backpressure.
--
-- The operator's reason and ticket of the last change are kept on the quota row (every
-- change is also an audit entry). Backpressure counts a tenant's queued (pending + ready)
-- jobs, in total and per job type, on every submit of a tenant that has a max_queued quota:
-- this partial index holds only queued jobs, so the count is an index-only scan bounded by
-- the queue cap.
ALTER TABLE orchestrator.quotas ADD COLUMN reason text NOT NULL DEFAULT '';
ALTER TABLE orchestrator.quotas ADD COLUMN ticket text NOT NULL DEFAULT '';
CREATE INDEX jobs_tenant_queued_type ON orchestrator.jobs (tenant, job_type)
  WHERE state IN ('pending', 'ready');

-- 0005: caps enforced before leasing (quotas max_active / max_per_hour / burst, per-source
-- concurrency), wake-ups when something becomes claimable without a job changing state,
-- and what schedule firing needs.
--
-- A source's max_active caps its leased jobs at once (NULL: no cap).
ALTER TABLE orchestrator.sources ADD COLUMN max_active integer
  CHECK (max_active IS NULL OR max_active > 0);

-- The hourly quota as a token bucket per quota row: it holds at most greatest(burst, 1)
-- tokens and refills max_per_hour per hour, so any rolling hour sees at most
-- max_per_hour + burst leases, and burst 0 spaces leases evenly. A quota without a row here
-- starts full. Written by the claim that spends the tokens (under the tenant's advisory
-- lock, see leases.sql).
CREATE TABLE orchestrator.quota_usage (
  quota_id   uuid PRIMARY KEY REFERENCES orchestrator.quotas (id) ON DELETE CASCADE,
  tenant     text NOT NULL REFERENCES orchestrator.tenants (id),
  tokens     double precision NOT NULL,
  updated_at timestamptz NOT NULL
);

-- Tokens of an hourly quota at `now` (before spending): refilled since `updated_at`, capped.
CREATE FUNCTION orchestrator.quota_tokens(max_per_hour integer, burst integer,
                                          tokens double precision, updated_at timestamptz,
                                          now timestamptz) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN tokens IS NULL THEN greatest(coalesce(burst, 0), 1)::double precision
         ELSE least(greatest(coalesce(burst, 0), 1)::double precision,
                    tokens + max_per_hour / 3600.0
                             * greatest(0, extract(epoch FROM now - updated_at)::double precision))
         END
$$;

-- Blackout windows, evaluated in UTC (the ratelimit service's orchestrator_core.blackouts
-- is the same rule in Python; a property test keeps the two equal): the end of the
-- occurrence of one window that covers `now`, or NULL. Without a weekly recurrence the
-- window is [start_at, end_at); a weekly one starts an occurrence on each listed ISO weekday
-- at start_minute_utc lasting duration_s (at most a week, so 8 days back cover it), every
-- occurrence clipped to [start_at, end_at) (end_at NULL: open ended).
CREATE FUNCTION orchestrator.blackout_active_until(start_at timestamptz, end_at timestamptz,
                                                   recurrence jsonb, now timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN now < start_at OR (end_at IS NOT NULL AND now >= end_at) THEN NULL
    WHEN recurrence IS NULL OR NOT recurrence ? 'weekly' THEN end_at
    ELSE (
      SELECT max(o.ends)
        FROM (SELECT greatest(w.begins, start_at) AS begins,
                     CASE WHEN end_at IS NULL THEN w.begins + w.dur
                          ELSE least(w.begins + w.dur, end_at) END AS ends
                FROM (SELECT d.day,
                             (d.day::timestamp
                              + make_interval(mins => (recurrence->'weekly'->>'start_minute_utc')::int))
                               AT TIME ZONE 'UTC' AS begins,
                             make_interval(secs => (recurrence->'weekly'->>'duration_s')::float8)
                               AS dur
                        FROM (SELECT (now AT TIME ZONE 'UTC')::date - g.n AS day
                                FROM generate_series(0, 8) AS g(n)) d) w
               WHERE recurrence->'weekly'->'days' @> to_jsonb(extract(isodow FROM w.day)::int)
             ) o
       WHERE o.begins <= now AND o.ends > now)
  END
$$;

-- Resuming a source, raising a cap or unpausing a quota makes jobs claimable without any
-- job changing state, so no job trigger would wake the lease streams: these do.
CREATE FUNCTION orchestrator.notify_claimable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('orch_jobs_ready', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER sources_claimable AFTER UPDATE OF paused, max_active ON orchestrator.sources
  FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.notify_claimable();
CREATE TRIGGER quotas_claimable AFTER INSERT OR UPDATE OR DELETE ON orchestrator.quotas
  FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.notify_claimable();

-- Schedules: an unset catch-up window means no limit; buffered_fire_at is the one fire time
-- an overlap policy of buffer_one keeps while the previous run is unfinished; the index finds
-- a schedule's unfinished runs (overlap policies).
ALTER TABLE orchestrator.schedules ALTER COLUMN catch_up_window DROP NOT NULL;
ALTER TABLE orchestrator.schedules ALTER COLUMN catch_up_window DROP DEFAULT;
ALTER TABLE orchestrator.schedules ADD COLUMN buffered_fire_at timestamptz;
CREATE INDEX schedules_tenant_id ON orchestrator.schedules (tenant, id);
CREATE INDEX runs_schedule_open ON orchestrator.runs (schedule_id)
  WHERE schedule_id IS NOT NULL AND state IN ('pending', 'running');

-- Watermarks: per {tenant, source, job type}, the event time up to which every window has
-- succeeded. It starts at the earliest window requested for the key and advances only over
-- a contiguous run of succeeded windows (a later window succeeding first does not move it;
-- it is picked up when the gap closes); it never moves back. Advanced by a statement
-- trigger on the job transitions to succeeded (same transaction), which also writes a
-- watermark.advanced event. Keys are handled in order, so concurrent completions lock
-- watermark rows in the same order.
CREATE INDEX jobs_event_windows ON orchestrator.jobs (tenant, source_id, job_type, event_window_start)
  WHERE event_window_start IS NOT NULL AND source_id IS NOT NULL;

CREATE FUNCTION orchestrator.watermark_advance(p_tenant text, p_source uuid, p_job_type text,
                                               p_job uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  mark timestamptz;
  start_mark timestamptz;
  next_mark timestamptz;
BEGIN
  INSERT INTO orchestrator.watermarks (tenant, source_id, job_type, high_watermark, updated_at)
  SELECT p_tenant, p_source, p_job_type, min(j.event_window_start), orchestrator.clock_now()
    FROM orchestrator.jobs j
   WHERE j.tenant = p_tenant AND j.source_id = p_source AND j.job_type = p_job_type
     AND j.event_window_start IS NOT NULL
  HAVING min(j.event_window_start) IS NOT NULL
  ON CONFLICT DO NOTHING;
  SELECT w.high_watermark INTO mark FROM orchestrator.watermarks w
   WHERE w.tenant = p_tenant AND w.source_id = p_source AND w.job_type = p_job_type
   FOR UPDATE;
  IF mark IS NULL THEN
    RETURN;
  END IF;
  start_mark := mark;
  LOOP
    SELECT max(j.event_window_end) INTO next_mark FROM orchestrator.jobs j
     WHERE j.tenant = p_tenant AND j.source_id = p_source AND j.job_type = p_job_type
       AND j.event_window_start IS NOT NULL AND j.event_window_start <= mark
       AND j.event_window_end > mark AND j.state = 'succeeded';
    EXIT WHEN next_mark IS NULL;
    mark := next_mark;
  END LOOP;
  IF mark > start_mark THEN
    UPDATE orchestrator.watermarks
       SET high_watermark = mark, last_job_id = p_job, updated_at = orchestrator.clock_now()
     WHERE tenant = p_tenant AND source_id = p_source AND job_type = p_job_type;
    INSERT INTO orchestrator.events (occurred_at, event_id, tenant, type, idempotency_key,
        actor_subject, actor_scopes, source_id, job_id, job_type, data)
    VALUES (orchestrator.clock_now(), gen_random_uuid(), p_tenant, 'watermark.advanced',
            format('orch-watermark-%s-%s-%s', p_source, p_job_type,
                   extract(epoch FROM mark)::numeric),
            coalesce(current_setting('orchestrator.actor_subject', true), ''),
            orchestrator.actor_scopes(), p_source, p_job, p_job_type,
            jsonb_build_object('from', start_mark, 'to', mark));
    PERFORM orchestrator.notify_events(NULL);
  END IF;
END
$$;

CREATE FUNCTION orchestrator.jobs_watermarks() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  k record;
BEGIN
  -- Most job updates (claims, heartbeats, failures) succeed nothing: leave at once.
  IF NOT EXISTS (SELECT 1 FROM new_rows n
                  WHERE n.state = 'succeeded' AND n.event_window_start IS NOT NULL
                    AND n.source_id IS NOT NULL) THEN
    RETURN NULL;
  END IF;
  FOR k IN
    SELECT n.tenant, n.source_id, n.job_type, max(n.id::text)::uuid AS job_id
      FROM new_rows n JOIN old_rows o USING (id)
     WHERE n.state = 'succeeded' AND o.state <> 'succeeded'
       AND n.source_id IS NOT NULL AND n.event_window_start IS NOT NULL
     GROUP BY n.tenant, n.source_id, n.job_type
     ORDER BY n.tenant, n.source_id, n.job_type
  LOOP
    PERFORM orchestrator.watermark_advance(k.tenant, k.source_id, k.job_type, k.job_id);
  END LOOP;
  RETURN NULL;
END
$$;
CREATE TRIGGER jobs_watermarks AFTER UPDATE ON orchestrator.jobs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION orchestrator.jobs_watermarks();

-- 0006: the audit service (see migrations/0006_audit.sql) — chain cursor, audit entries in the event history, secret
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

-- The gateway's Idempotency-Key records, shared by every gateway replica (migration 0007):
-- one row per (tenant, caller subject, route, key). The request that inserts it owns it
-- (claim_id) and keeps locked_until ahead while it runs, then stores the answer; any replica
-- replays it until expires_at. A row whose owner died (lock run out, no answer) is taken over
-- by the next request with the same body. Expired rows count as absent; the gateway's
-- cleanup pass (LeaderLoop.IDEMPOTENCY_KEYS) deletes them.
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
ALTER TABLE orchestrator.idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator.idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orchestrator.idempotency_keys
  USING (orchestrator.tenant_visible(tenant)) WITH CHECK (orchestrator.tenant_visible(tenant));

-- 0010: incidents written by the system (see migrations/0010_incidents.sql).
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
