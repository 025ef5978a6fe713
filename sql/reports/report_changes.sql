-- Devices added and removed against the month before (both months' snapshots).
WITH devices AS (
    SELECT s.month, d.identity
    FROM month_snapshots AS s
    JOIN snapshot_devices AS d USING (snapshot_id)
    WHERE s.customer_id = $customer_id AND s.month IN ($month, $previous)
),
seen AS (
    SELECT identity, bool_or(month = $month) AS now, bool_or(month = $previous) AS before
    FROM devices
    GROUP BY identity
)
SELECT
    count(*) FILTER (WHERE now AND NOT before),
    count(*) FILTER (WHERE before AND NOT now),
    count(*) FILTER (WHERE before) > 0
FROM seen;
