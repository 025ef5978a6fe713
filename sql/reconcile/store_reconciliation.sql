-- Idempotent partition load of one report month's reconciliation rows, as the rows hold them:
-- each column a list of the rows' values (counts integers, amounts exact decimals, no value
-- NULL), which unnest() zips back into rows.
DELETE FROM reconciliation WHERE month = $report_month;
INSERT INTO reconciliation BY NAME
SELECT unnest($customer_id) AS customer_id, unnest($month) AS month,
       unnest($category) AS category, unnest($status) AS status,
       unnest($devices_counted) AS devices_counted, unnest($eol_excluded) AS eol_excluded,
       unnest($ordered_devices) AS ordered_devices, unnest($baseline) AS baseline,
       unnest($growth_pct) AS growth_pct, unnest($true_up_devices) AS true_up_devices,
       unnest($prorated_amount) AS prorated_amount, unnest($currency) AS currency,
       unnest($new_ordered_devices) AS new_ordered_devices,
       unnest($new_baseline) AS new_baseline;
