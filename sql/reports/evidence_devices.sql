-- Every inventory row of a customer's month snapshot with the status the reconciliation gave it
-- (sql/reconcile/category_counts.sql): one row per device counted or excluded as end of life,
-- or of a category the contract does not count (not counted, quote only, unclassified), its
-- further listings as duplicates, and the rows it rejected with their reason. Derived here
-- from the same views, never recomputed in Python, so the evidence pack cannot disagree.
WITH rows AS (
    SELECT
        r.*,
        row_number() OVER (PARTITION BY r.snapshot_id, r.identity
                           ORDER BY r.model_key, r.site, r.room, r.model, r.row_number)
            AS listing
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
        ELSE 'counted'
    END AS status,
    r.reject_reason,
    r.model,
    coalesce(r.site, '') AS site,
    coalesce(r.room, '') AS room,
    coalesce(r.serial, '') AS serial,
    coalesce(r.mac, '') AS mac,
    coalesce(r.lens_device_id, '') AS lens_device_id,
    f.source_name AS source,
    r.row_number
FROM rows AS r
JOIN snapshots AS f USING (snapshot_id)
LEFT JOIN model_classes AS c USING (model_key)
ORDER BY category, status, r.model, site, room, r.row_number;
