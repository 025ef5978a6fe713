-- Devices per customer, month and catalog category in each month's snapshot (rules.md 2-6),
-- from the per-model counts stored with each snapshot (snapshot_models). A device whose model
-- reaches end of service on or before the month's last day is excluded from the count and
-- counted in eol_excluded instead.
WITH classified AS (
    SELECT
        s.customer_id,
        s.month,
        c.category,
        c.end_of_service IS NOT NULL
            AND c.end_of_service <= last_day(strptime(s.month || '-01', '%Y-%m-%d')::DATE)
            AS is_end_of_life,
        m.devices
    FROM month_snapshots AS s
    JOIN snapshot_models AS m USING (snapshot_id)
    JOIN model_classes AS c USING (model_key)
    WHERE s.customer_id = ANY($customer_ids)
)
SELECT
    customer_id,
    month,
    category,
    coalesce(sum(devices) FILTER (WHERE NOT is_end_of_life), 0)::INTEGER AS devices_counted,
    coalesce(sum(devices) FILTER (WHERE is_end_of_life), 0)::INTEGER AS eol_excluded
FROM classified
GROUP BY ALL
ORDER BY ALL;
