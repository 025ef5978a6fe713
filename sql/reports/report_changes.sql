-- Devices added, removed and moved to another site against the month before (both months'
-- snapshots), leaving out what the catalog classes not_counted (accessories, peripherals): they
-- are in no count, and naming them would bury the devices that changed a count. The third
-- column says whether the month before had a snapshot at all.
-- Classified through model_classes (once per model, as report_devices.sql), in one plain join:
-- model_class() per device, a LEFT JOIN to the classes or a DISTINCT aggregate over the join
-- make DuckDB key every raw row of the warehouse (a second per report at a million rows,
-- against 0.03 s; benchmarks/results.md, render median).
WITH devices AS (
    SELECT s.month, d.identity, coalesce(d.site, '') AS site,
           c.category IS DISTINCT FROM 'not_counted' AS listed
    FROM month_snapshots AS s
    JOIN snapshot_devices AS d USING (snapshot_id)
    JOIN model_classes AS c USING (model_key)
    WHERE s.customer_id = $customer_id AND s.month IN ($month, $previous)
),
seen AS (
    SELECT identity, bool_or(month = $month) AS now, bool_or(month = $previous) AS before,
           bool_or(listed) AS listed,
           max(site) FILTER (WHERE month = $month)
               IS DISTINCT FROM max(site) FILTER (WHERE month = $previous) AS moved
    FROM devices
    GROUP BY identity
)
SELECT
    count(*) FILTER (WHERE listed AND now AND NOT before),
    count(*) FILTER (WHERE listed AND before AND NOT now),
    count(*) FILTER (WHERE before) > 0,
    count(*) FILTER (WHERE listed AND now AND before AND moved)
FROM seen;
