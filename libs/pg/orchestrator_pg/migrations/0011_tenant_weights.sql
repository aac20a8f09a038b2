-- Weighted fair share (issue 21): a tenant's weight is its share of the worker slots against
-- the other tenants that have ready jobs of the same types (weight 3 gets three leases for
-- every one of a weight-1 tenant). Caps, quotas and rate limits still apply first. Additive
-- with a default: no rewrite, old code ignores it.
ALTER TABLE orchestrator.tenants
  ADD COLUMN weight integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000);
