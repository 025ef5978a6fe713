-- Devices per customer, month and catalog category in each month's snapshot (rules.md 2-6),
-- from the per-model counts stored with each snapshot (snapshot_models). A device whose model
-- reaches end of service on or before the month's last day is excluded from the count and
-- counted in eol_excluded instead. Of the devices counted (rules.md "Devices not seen"), those
-- Lens last saw more than $not_seen_days days before the month's last day (not_seen), and those
-- with a last-seen day at all (seen_known; the others' last seen is not known), from the
-- per-day counts (snapshot_last_seen).
WITH classified AS (
    SELECT
        s.customer_id,
        s.month,
        s.snapshot_id,
        m.model_key,
        c.category,
        c.end_of_service IS NOT NULL
            AND c.end_of_service <= last_day(strptime(s.month || '-01', '%Y-%m-%d')::DATE)
            AS is_end_of_life,
        m.devices
    FROM month_snapshots AS s
    JOIN snapshot_models AS m USING (snapshot_id)
    JOIN model_classes AS c USING (model_key)
    WHERE s.customer_id = ANY($customer_ids)
),
seen AS (
    SELECT
        c.customer_id,
        c.month,
        c.category,
        sum(l.devices) FILTER (WHERE is_not_seen(l.last_seen, c.month, $not_seen_days))
            AS not_seen,
        sum(l.devices) AS seen_known
    FROM classified AS c
    JOIN snapshot_last_seen AS l USING (snapshot_id, model_key)
    WHERE NOT c.is_end_of_life
    GROUP BY ALL
),
counted AS (
    SELECT
        customer_id,
        month,
        category,
        coalesce(sum(devices) FILTER (WHERE NOT is_end_of_life), 0)::INTEGER AS devices_counted,
        coalesce(sum(devices) FILTER (WHERE is_end_of_life), 0)::INTEGER AS eol_excluded
    FROM classified
    GROUP BY ALL
)
SELECT
    c.customer_id,
    c.month,
    c.category,
    c.devices_counted,
    c.eol_excluded,
    coalesce(s.not_seen, 0)::INTEGER AS not_seen,
    coalesce(s.seen_known, 0)::INTEGER AS seen_known
FROM counted AS c
LEFT JOIN seen AS s USING (customer_id, month, category)
ORDER BY ALL;
