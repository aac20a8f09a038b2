-- Artifacts: outputs a job reported, written under its lease (fenced like every lease
-- write), read by operators.

-- name: artifact_list
SELECT * FROM orchestrator.artifacts
 WHERE tenant = %(tenant)s
   AND (%(job_id)s::uuid IS NULL OR job_id = %(job_id)s)
   AND (%(run_id)s::uuid IS NULL OR run_id = %(run_id)s)
   AND (%(after_id)s::uuid IS NULL OR id > %(after_id)s)
 ORDER BY id
 LIMIT %(limit)s;

-- name: artifact_insert_many
-- Artifacts of jobs whose lease the writer holds (fenced by lease id and the job's state);
-- the job's tenant, run and attempt come from the job row. A name already recorded for the
-- attempt is left alone (the caller tells an identical repeat from a conflict).
INSERT INTO orchestrator.artifacts (id, tenant, job_id, run_id, attempt, name, media_type,
                                    size_bytes, digest, uri, created_at)
SELECT a.id, j.tenant, j.id, j.run_id, j.attempt, a.name, a.media_type, a.size_bytes, a.digest,
       a.uri, %(now)s
  FROM unnest(%(ids)s::uuid[], %(job_ids)s::uuid[], %(lease_ids)s::uuid[], %(names)s::text[],
              %(media_types)s::text[], %(sizes)s::bigint[], %(digests)s::text[],
              %(uris)s::text[])
       AS a(id, job_id, lease_id, name, media_type, size_bytes, digest, uri)
  JOIN orchestrator.jobs j ON j.id = a.job_id AND j.lease_id = a.lease_id
 WHERE j.state = ANY(%(states)s)
   AND (%(tenants)s::text[] IS NULL OR j.tenant = ANY(%(tenants)s))
ON CONFLICT (job_id, attempt, name) DO NOTHING
RETURNING job_id, name;

-- name: artifact_existing_many
-- The recorded artifacts of the current attempt for (job, lease, name) triples.
SELECT a.job_id, a.name, a.digest, a.size_bytes
  FROM unnest(%(job_ids)s::uuid[], %(lease_ids)s::uuid[], %(names)s::text[])
       AS q(job_id, lease_id, name)
  JOIN orchestrator.jobs j ON j.id = q.job_id AND j.lease_id = q.lease_id
  JOIN orchestrator.artifacts a ON a.job_id = j.id AND a.attempt = j.attempt AND a.name = q.name
 WHERE (%(tenants)s::text[] IS NULL OR j.tenant = ANY(%(tenants)s));
