-- The data-quality findings of a customer's month snapshot and of its RMA logs, failed ones.
SELECT q.source_name, q.severity, q.message, q.message_json, q.subject, q.check_name
FROM quality_checks AS q
WHERE q.customer_id = $customer_id AND NOT q.passed
  AND (q.subject IN (SELECT snapshot_id FROM month_snapshots
                     WHERE customer_id = $customer_id AND month = $month)
       OR (q.subject LIKE 'rma:%' AND q.month <= $month AND q.month >= $year_start))
ORDER BY q.severity DESC, q.source_name, q.check_name;
