-- Where each file content was archived when it was loaded, per customer, month and kind (the
-- first time): a file of the same content, customer, month and kind is a duplicate.
SELECT customer_id, sha256, month, kind, first(stored_path ORDER BY receipt_seq)
FROM intake_log
WHERE outcome = 'loaded'
GROUP BY ALL;
