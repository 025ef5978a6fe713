-- Devices per customer, month and catalog category in each month's snapshot (rules.md 2-6).
-- A device whose model reaches end of service on or before the month's last day is excluded
-- from the count and counted in eol_excluded instead.
WITH classified AS (
    SELECT
        s.customer_id,
        s.month,
        c.category,
        c.end_of_service IS NOT NULL
            AND c.end_of_service <= last_day(strptime(s.month || '-01', '%Y-%m-%d')::DATE)
            AS is_end_of_life
    FROM month_snapshots AS s
    JOIN snapshot_devices AS d USING (snapshot_id)
    JOIN model_classes AS c USING (model_key)
    WHERE s.customer_id = ANY($customer_ids)
)
SELECT
    customer_id,
    month,
    category,
    count(*) FILTER (WHERE NOT is_end_of_life) AS devices_counted,
    count(*) FILTER (WHERE is_end_of_life) AS eol_excluded
FROM classified
GROUP BY ALL
ORDER BY ALL;
