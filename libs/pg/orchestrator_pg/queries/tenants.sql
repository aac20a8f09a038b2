-- Tenant registry. Every tenant-scoped row references a registered tenant.

-- name: tenant_upsert
INSERT INTO orchestrator.tenants (id, display_name)
VALUES (%(id)s, %(display_name)s)
ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name
RETURNING id, display_name, created_at, weight;

-- name: tenant_list
SELECT id, display_name, created_at, weight FROM orchestrator.tenants ORDER BY id;

-- name: tenant_weight_set
-- A tenant's share of the worker slots (weighted fair share in job_claim_admitted).
UPDATE orchestrator.tenants SET weight = %(weight)s WHERE id = %(id)s
RETURNING id, display_name, created_at, weight;

-- name: tenant_exists
SELECT EXISTS (SELECT 1 FROM orchestrator.tenants WHERE id = %(tenant)s) AS present;

-- name: tenant_list_by_ids
-- The registered tenants among %(ids)s (those a caller's token grants), with their weights.
SELECT id, display_name, created_at, weight FROM orchestrator.tenants
 WHERE id = ANY(%(ids)s) ORDER BY id;
