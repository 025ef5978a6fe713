-- Files in quarantine, oldest first.
SELECT stored_path, reason
FROM intake_log
WHERE outcome = 'quarantined'
ORDER BY receipt_seq;
