-- Idempotent partition load of one report month's results (rows as written to the CSV files).
DELETE FROM reconciliation WHERE month = $month;
INSERT INTO reconciliation
SELECT customer_id, month, category, status,
       CAST(nullif(devices_counted, '') AS INTEGER), CAST(nullif(eol_excluded, '') AS INTEGER),
       CAST(nullif(ordered_devices, '') AS INTEGER), CAST(nullif(baseline, '') AS DECIMAL(18, 2)),
       CAST(nullif(growth_pct, '') AS DECIMAL(18, 2)), CAST(nullif(true_up_devices, '') AS INTEGER),
       CAST(nullif(prorated_amount, '') AS DECIMAL(18, 2)), currency,
       CAST(nullif(new_ordered_devices, '') AS INTEGER),
       CAST(nullif(new_baseline, '') AS DECIMAL(18, 2))
FROM staged_results;
DELETE FROM rma_results WHERE month = $month;
INSERT INTO rma_results
SELECT customer_id, $month, CAST(year AS INTEGER), CAST(headset_rmas AS INTEGER),
       CAST(headset_base AS INTEGER), CAST(rma_rate_pct AS DECIMAL(18, 2)), status
FROM staged_rma;
