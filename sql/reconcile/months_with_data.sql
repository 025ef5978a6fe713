-- The months that have a snapshot, per customer (a snapshot with no valid row still counts:
-- the partner delivered, and the inventory is empty).
SELECT customer_id, month
FROM month_snapshots
WHERE customer_id = ANY($customer_ids)
ORDER BY ALL;
