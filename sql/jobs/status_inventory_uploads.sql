-- Every inventory upload taken in, newest first (status picks those whose name held no month).
SELECT month, customer_id, file_name
FROM intake_log
WHERE kind = 'inventory' AND outcome = 'loaded'
ORDER BY receipt_seq DESC;
