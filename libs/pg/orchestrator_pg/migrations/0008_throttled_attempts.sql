-- Attempts that ended in an upstream 429 (the host asked us to slow down, the job did not
-- fail): they are counted apart and spend none of the job's max_attempts nor grow its
-- backoff (issue 15). Additive with a default: no rewrite, old code ignores it.
ALTER TABLE orchestrator.jobs
  ADD COLUMN throttled_attempts integer NOT NULL DEFAULT 0 CHECK (throttled_attempts >= 0);
