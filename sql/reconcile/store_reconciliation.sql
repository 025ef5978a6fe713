-- Idempotent partition load of one report month's reconciliation rows (as written to the CSV).
DELETE FROM reconciliation WHERE month = $month;
INSERT INTO reconciliation
SELECT customer_id, month, category, status,
       CAST(nullif(devices_counted, '') AS INTEGER), CAST(nullif(eol_excluded, '') AS INTEGER),
       CAST(nullif(ordered_devices, '') AS INTEGER), CAST(nullif(baseline, '') AS DECIMAL(18, 2)),
       CAST(nullif(growth_pct, '') AS DECIMAL(18, 2)), CAST(nullif(true_up_devices, '') AS INTEGER),
       CAST(nullif(prorated_amount, '') AS DECIMAL(18, 2)), currency,
       CAST(nullif(new_ordered_devices, '') AS INTEGER),
       CAST(nullif(new_baseline, '') AS DECIMAL(18, 2))
FROM staged_rows;
