-- Event-time watermarks per {source, job type}, advanced by the jobs_watermarks trigger.

-- name: watermark_list
-- Watermarks of a tenant in (source, job type) order, after the key %(after)s
-- ("<source id>|<job type>", NULL for the first page).
SELECT * FROM orchestrator.watermarks
 WHERE tenant = %(tenant)s
   AND (%(source_id)s::uuid IS NULL OR source_id = %(source_id)s)
   AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
   AND (%(after)s::text IS NULL OR source_id::text || '|' || job_type > %(after)s)
 ORDER BY source_id::text || '|' || job_type
 LIMIT %(limit)s;
