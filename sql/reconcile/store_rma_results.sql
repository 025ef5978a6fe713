-- Idempotent partition load of one report month's headset RMA rates (as written to rma.csv).
DELETE FROM rma_results WHERE month = $month;
INSERT INTO rma_results
SELECT customer_id, $month, CAST(year AS INTEGER), CAST(headset_rmas AS INTEGER),
       CAST(headset_base AS INTEGER), CAST(rma_rate_pct AS DECIMAL(18, 2)), status
FROM staged_rows;
