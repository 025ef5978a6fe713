-- Devices added and removed against the month before (both months' snapshots).
WITH this_month AS (
    SELECT d.identity FROM month_snapshots s JOIN snapshot_devices d USING (snapshot_id)
    WHERE s.customer_id = $customer_id AND s.month = $month
), last_month AS (
    SELECT d.identity FROM month_snapshots s JOIN snapshot_devices d USING (snapshot_id)
    WHERE s.customer_id = $customer_id AND s.month = $previous
)
SELECT
    (SELECT count(*) FROM this_month WHERE identity NOT IN (SELECT identity FROM last_month)),
    (SELECT count(*) FROM last_month WHERE identity NOT IN (SELECT identity FROM this_month)),
    (SELECT count(*) FROM last_month) > 0;
