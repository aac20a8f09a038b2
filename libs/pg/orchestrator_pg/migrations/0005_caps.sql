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
