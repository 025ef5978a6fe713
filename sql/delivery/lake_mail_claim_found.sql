-- Another sender's claim of a delivery attempt: who, the answer it recorded (NULL: none yet),
-- and whether its session is still open (a session started since with the same pid is not it;
-- a start hidden from this role counts as open).
SELECT c.claimed_by, c.status, c.answer,
       EXISTS (SELECT 1 FROM pg_stat_activity AS a
               WHERE a.pid = c.claimant_pid
                 AND coalesce(a.backend_start = c.claimant_start, true)) AS alive
FROM polyrecon_mail_claims AS c
WHERE c.message_key = %(message_key)s AND c.queued_at = %(queued_at)s
  AND c.attempt = %(attempt)s
