-- Uploads rejected for the month, per customer: the portfolio lists them as needing action.
SELECT customer_id, count(*)::INTEGER
FROM intake_log
WHERE outcome = 'quarantined' AND month = $month AND customer_id IS NOT NULL
GROUP BY customer_id;
