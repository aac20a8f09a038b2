-- DAG edges: parent -> child dependencies between the jobs of one run.

-- name: dag_edge_insert_many
INSERT INTO orchestrator.dag_edges (tenant, run_id, parent_job_id, child_job_id)
SELECT %(tenant)s, %(run_id)s, p, c
  FROM unnest(%(parents)s::uuid[], %(children)s::uuid[]) AS t(p, c)
ON CONFLICT DO NOTHING;

-- name: dag_edge_list_for_run
SELECT parent_job_id, child_job_id FROM orchestrator.dag_edges
 WHERE tenant = %(tenant)s AND run_id = %(run_id)s
 ORDER BY child_job_id, parent_job_id;

-- name: dag_edge_parents_of
SELECT child_job_id, parent_job_id FROM orchestrator.dag_edges
 WHERE child_job_id = ANY(%(job_ids)s)
 ORDER BY child_job_id, parent_job_id;
