-- The devices added and removed against the month before, each with its model and site as the
-- snapshot that has it lists them; the first $limit of each, and how many there are. What the
-- catalog classes not_counted is left out, as in report_changes.sql.
WITH devices AS (
    SELECT s.month, d.identity, d.model, coalesce(d.site, '') AS site
    FROM month_snapshots AS s
    JOIN snapshot_devices AS d USING (snapshot_id)
    WHERE s.customer_id = $customer_id AND s.month IN ($month, $previous)
      AND model_class(d.model_key).category IS DISTINCT FROM 'not_counted'
),
changed AS (
    SELECT identity, any_value(model) AS model, any_value(site) AS site,
           CASE WHEN bool_or(month = $month) THEN 'added' ELSE 'removed' END AS change
    FROM devices
    GROUP BY identity
    HAVING count(DISTINCT month) = 1
)
SELECT change, identity, model, site, count(*) OVER (PARTITION BY change) AS total
FROM changed
QUALIFY row_number() OVER (PARTITION BY change ORDER BY model, site, identity) <= $limit
ORDER BY change, model, site, identity;
