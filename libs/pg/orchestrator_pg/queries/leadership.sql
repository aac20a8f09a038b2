-- Leadership of the leader-only loops (_leadership.py): a session advisory lock per loop,
-- held by a dedicated connection and released by PostgreSQL when that connection ends.

-- name: leader_try_lock
SELECT pg_try_advisory_lock(%(key)s) AS acquired;

-- name: leader_check
-- The leader's connection still holds its lock (a dead connection fails this call).
SELECT count(*) > 0 AS held FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
   AND ((classid::bigint << 32) | objid::bigint) = %(key)s;

-- name: leader_unlock
SELECT pg_advisory_unlock(%(key)s) AS released;

