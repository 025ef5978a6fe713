-- Which snapshot a customer's month stands on.
SELECT source, source_name, received_at, row_count
FROM month_snapshots
WHERE customer_id = $customer_id AND month = $month;
