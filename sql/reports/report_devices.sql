-- The devices of a customer's month snapshot with what the report needs to list them; the day
-- Lens last saw each, and whether that lies more than $not_seen_days days before the month's
-- end (rules.md "Devices not seen"; null where the day is not known).
SELECT
    d.identity,
    d.model,
    coalesce(d.site, '') AS site,
    coalesce(c.category, 'unclassified') AS category,
    c.end_of_service IS NOT NULL
        AND c.end_of_service <= last_day(strptime($month || '-01', '%Y-%m-%d')::DATE)
        AS is_end_of_life,
    c.end_of_service,
    d.times_listed,
    d.last_seen,
    coalesce(is_not_seen(d.last_seen, $month, $not_seen_days), false) AS is_not_seen
FROM month_snapshots AS s
JOIN snapshot_devices AS d USING (snapshot_id)
JOIN model_classes AS c USING (model_key)
WHERE s.customer_id = $customer_id AND s.month = $month
ORDER BY category, d.model, site, d.identity;
