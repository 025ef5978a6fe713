-- The devices added and removed against the month before, each with its model and site as the
-- snapshot that has it lists them; the first $limit of each, and how many there are. What the
-- catalog classes not_counted is left out, as in report_changes.sql.
WITH devices AS (  -- one plain join, as in report_changes.sql
    SELECT s.month, d.identity, d.model, coalesce(d.site, '') AS site
    FROM month_snapshots AS s
    JOIN snapshot_devices AS d USING (snapshot_id)
    JOIN model_classes AS c USING (model_key)
    WHERE s.customer_id = $customer_id AND s.month IN ($month, $previous)
      AND c.category <> 'not_counted'
),
changed AS (
    SELECT identity, any_value(model) AS model, any_value(site) AS site,
           CASE WHEN bool_or(month = $month) THEN 'added' ELSE 'removed' END AS change
    FROM devices
    GROUP BY identity
    HAVING min(month) = max(month)  -- in one month only (a DISTINCT aggregate here makes
                                    -- DuckDB key the whole warehouse first)
)
SELECT change, identity, model, site, count(*) OVER (PARTITION BY change) AS total
FROM changed
QUALIFY row_number() OVER (PARTITION BY change ORDER BY model, site, identity) <= $limit
ORDER BY change, model, site, identity;
