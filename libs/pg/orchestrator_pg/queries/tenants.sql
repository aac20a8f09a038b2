-- Tenant registry. Every tenant-scoped row references a registered tenant.

-- name: tenant_upsert
INSERT INTO orchestrator.tenants (id, display_name)
VALUES (%(id)s, %(display_name)s)
ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name
RETURNING id, display_name, created_at;

-- name: tenant_list
SELECT id, display_name, created_at FROM orchestrator.tenants ORDER BY id;

-- name: tenant_exists
SELECT EXISTS (SELECT 1 FROM orchestrator.tenants WHERE id = %(tenant)s) AS present;
