-- Which snapshot a customer's month stands on; for a Lens API pull, its tenant's region.
SELECT s.source, s.source_name, s.received_at, s.row_count, p.region
FROM month_snapshots AS s
LEFT JOIN lens_pulls AS p ON p.snapshot_id = s.snapshot_id
WHERE s.customer_id = $customer_id AND s.month = $month;
