-- Idempotent partition load of one report month's headset RMA rates, as the rows hold them
-- (each column a list of the rows' values, zipped back into rows by unnest()).
DELETE FROM rma_results WHERE month = $month;
INSERT INTO rma_results BY NAME
SELECT unnest($customer_id) AS customer_id, $month AS month, unnest($year) AS year,
       unnest($headset_rmas) AS headset_rmas, unnest($headset_base) AS headset_base,
       unnest($rma_rate_pct) AS rma_rate_pct, unnest($status) AS status;
