-- Every quarantined or held upload, oldest first: each owes its partner one file-rejected
-- notice. Read from the intake ledger, not from a run's memory, so a run that stops between
-- the quarantine and the e-mail still leaves the notice to the next run.
SELECT customer_id, file_name, reason, reason_message, stored_path, receipt_seq
FROM intake_log
WHERE outcome IN ('quarantined', 'held')
ORDER BY receipt_seq;
