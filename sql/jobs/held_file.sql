-- The latest intake record of what is kept at $stored_path: `approve --file` puts it back into
-- the inbox when it is a held file.
SELECT outcome, customer_id, file_name, sha256, kind, month
FROM intake_log
WHERE stored_path = $stored_path
ORDER BY receipt_seq DESC
LIMIT 1;
