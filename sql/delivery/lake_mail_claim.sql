-- Claim a delivery attempt for this session: a row back if it is this session's, none if
-- another sender claimed it first (lake_mail_claim_found.sql says whose).
INSERT INTO polyrecon_mail_claims AS c (message_key, queued_at, attempt, claimed_by,
                                        claimant_pid, claimant_start)
SELECT %(message_key)s, %(queued_at)s, %(attempt)s, current_setting('application_name'), pid,
       backend_start
FROM pg_stat_activity
WHERE pid = pg_backend_pid()
ON CONFLICT DO NOTHING
RETURNING c.claimed_by
