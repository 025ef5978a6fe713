-- Every inventory row of a customer's month snapshot with the status the reconciliation gave it
-- (sql/reconcile/category_counts.sql): one row per device counted or excluded as end of life,
-- or of a category the contract does not count (not counted, quote only, unclassified), its
-- further listings as duplicates, and the rows it rejected with their reason. Derived here
-- from the same views, never recomputed in Python, so the evidence pack cannot disagree.
-- A counted device of a category in $flagged or $excluded (the contract's categories whose
-- policy not_seen is flag or exclude) that Lens last saw more than $not_seen_days days before
-- the month's end (rules.md "Devices not seen": its latest day over its rows that count) is
-- `counted_not_seen` or `not_seen` (not counted). Each row shows its own last-seen cell: the
-- day, or the cell as it stands where it holds no day.
WITH rows AS (
    SELECT
        r.*,
        row_number() OVER (PARTITION BY r.snapshot_id, r.identity
                           ORDER BY r.model_key, r.site, r.room, r.model, r.row_number)
            AS listing,
        max(r.last_seen_day) FILTER (WHERE r.reject_reason IS NULL)
            OVER (PARTITION BY r.snapshot_id, r.identity) AS device_last_seen
    FROM month_snapshots AS s
    JOIN inventory_rows AS r USING (snapshot_id)
    WHERE s.customer_id = $customer_id AND s.month = $month
)
SELECT
    coalesce(c.category, 'unclassified') AS category,
    CASE
        WHEN r.reject_reason IS NOT NULL THEN 'rejected'
        WHEN r.listing > 1 THEN 'duplicate'
        -- counted in its own category, but never against the contract (rules.md 2-4)
        WHEN coalesce(c.category, 'unclassified') IN ('not_counted', 'quote_only', 'unclassified')
            THEN coalesce(c.category, 'unclassified')
        WHEN c.end_of_service IS NOT NULL
            AND c.end_of_service <= last_day(strptime($month || '-01', '%Y-%m-%d')::DATE)
            THEN 'end_of_life'
        WHEN c.category = ANY($excluded)
            AND is_not_seen(r.device_last_seen, $month, $not_seen_days) THEN 'not_seen'
        WHEN c.category = ANY($flagged)
            AND is_not_seen(r.device_last_seen, $month, $not_seen_days) THEN 'counted_not_seen'
        ELSE 'counted'
    END AS status,
    r.reject_reason,
    r.model,
    coalesce(r.site, '') AS site,
    coalesce(r.room, '') AS room,
    coalesce(r.serial, '') AS serial,
    coalesce(r.mac, '') AS mac,
    coalesce(r.lens_device_id, '') AS lens_device_id,
    coalesce(strftime(r.last_seen_day, '%Y-%m-%d'), r.last_seen, '') AS last_seen,
    f.source_name AS source,
    r.row_number
FROM rows AS r
JOIN snapshots AS f USING (snapshot_id)
LEFT JOIN model_classes AS c USING (model_key)
ORDER BY category, status, r.model, site, room, r.row_number;
