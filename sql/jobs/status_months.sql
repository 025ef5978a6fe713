-- Months with at least one snapshot, per customer.
SELECT customer_id, list(DISTINCT month ORDER BY month) AS months
FROM snapshots
GROUP BY customer_id;
