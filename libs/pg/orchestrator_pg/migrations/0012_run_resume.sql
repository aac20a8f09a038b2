-- 0012: resuming a failed run (issue 20, item 4).
--
-- ResumeRun puts a failed run's dead jobs back to ready (dead -> ready, already legal: the
-- event is `job.retried`) and revives the jobs that were canceled as `upstream_failed`
-- below them: canceled -> pending while a parent has not succeeded yet, canceled -> ready
-- when every parent has. Those two transitions are new; their event is `job.revived`.
-- Only the store's resume writes them (it checks the reason is upstream_failed); the
-- trigger guards only the state pair, like every other transition.
CREATE OR REPLACE FUNCTION orchestrator.job_event_type(from_state text, to_state text) RETURNS text
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
