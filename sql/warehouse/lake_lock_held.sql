-- How many of the given advisory locks this session holds (warehouse/lake.py,
-- assert_lock_held): a key is a bigint, shown by pg_locks as two halves.
SELECT count(*)
FROM pg_locks
WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
  AND ((classid::bigint << 32) | objid::bigint) = ANY(%(keys)s::bigint[])
