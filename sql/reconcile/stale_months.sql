-- Months whose stored result may be out of date, with the customers to render again: a snapshot
-- of that month or of an earlier one (a month's result replays its term from the start) was
-- received after the month was last reconciled. A month never reconciled is stale once it has
-- a snapshot of its own. Months after $current (not begun) wait for their time.
WITH months AS (
    SELECT month FROM reconciled_months
    UNION
    SELECT DISTINCT month FROM snapshots
)
SELECT m.month, list(DISTINCT s.customer_id ORDER BY s.customer_id) AS customers
FROM months AS m
LEFT JOIN reconciled_months AS r USING (month)
JOIN snapshots AS s
    ON s.month <= m.month
   AND s.receipt_seq > coalesce(r.through_receipt, -1)
   AND (r.month IS NOT NULL OR s.month = m.month)
WHERE m.month <= $current
GROUP BY m.month
ORDER BY m.month;
