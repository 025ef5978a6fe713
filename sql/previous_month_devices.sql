-- Distinct devices in the customer's snapshot of the month before (null without one).
SELECT count(d.identity)
FROM month_snapshots AS s
JOIN snapshot_devices AS d USING (snapshot_id)
WHERE s.customer_id = $customer_id AND s.month = $month;
