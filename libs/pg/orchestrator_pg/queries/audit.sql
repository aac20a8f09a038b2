-- Operator actions: who did what to which object, with scopes, reason and ticket.

-- name: audit_entry_insert
INSERT INTO orchestrator.audit_entries (id, tenant, actor_subject, actor_scopes, action, target,
                                        reason, ticket, occurred_at)
VALUES (%(id)s, %(tenant)s, %(actor_subject)s, %(actor_scopes)s, %(action)s, %(target)s,
        %(reason)s, %(ticket)s, %(now)s);

-- name: dead_letter_mark_replayed
UPDATE orchestrator.dead_letter
   SET status = 'replayed', resolved_by = %(actor)s, resolution_reason = %(reason)s,
       resolved_at = %(now)s
 WHERE tenant = %(tenant)s AND job_id = %(job_id)s AND status = 'pending';
