-- Operator actions: who did what to which object, with scopes, reason and ticket.

-- name: audit_entry_insert
INSERT INTO orchestrator.audit_entries (id, tenant, actor_subject, actor_scopes, action, target,
                                        reason, ticket, occurred_at)
VALUES (%(id)s, %(tenant)s, %(actor_subject)s, %(actor_scopes)s, %(action)s, %(target)s,
        %(reason)s, %(ticket)s, %(now)s);
