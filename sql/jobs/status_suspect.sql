-- Month snapshots (the ones that count) flagged as suspect by the quality suite.
SELECT q.month, q.customer_id, q.source_name, q.message
FROM quality_checks AS q
JOIN month_snapshots AS s ON s.snapshot_id = q.subject
WHERE q.severity = 'suspect' AND NOT q.passed
ORDER BY q.month, q.customer_id;
