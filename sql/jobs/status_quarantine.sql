-- Files put in quarantine, oldest first; status lists those still there.
SELECT stored_path, reason
FROM intake_log
WHERE outcome = 'quarantined'
ORDER BY receipt_seq;
