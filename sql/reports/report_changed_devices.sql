-- The devices added, removed and moved to another site against the month before, each with
-- its model and site as the snapshot that has it lists them (a moved one also with its site
-- before); the first $limit of each, and how many there are. What the catalog classes
-- not_counted is left out, as in report_changes.sql.
WITH devices AS (  -- one plain join, as in report_changes.sql
    SELECT s.month, d.identity, d.model, coalesce(d.site, '') AS site
    FROM month_snapshots AS s
    JOIN snapshot_devices AS d USING (snapshot_id)
    JOIN model_classes AS c USING (model_key)
    WHERE s.customer_id = $customer_id AND s.month IN ($month, $previous)
      AND c.category <> 'not_counted'
),
changed AS (
    SELECT identity, max(model) FILTER (WHERE month = $month) AS model_now,
           max(model) FILTER (WHERE month = $previous) AS model_before,
           max(site) FILTER (WHERE month = $month) AS site_now,
           max(site) FILTER (WHERE month = $previous) AS site_before
    FROM devices
    GROUP BY identity  -- a device is listed once per snapshot (snapshot_devices)
),
listed AS (
    SELECT CASE WHEN site_before IS NULL THEN 'added' WHEN site_now IS NULL THEN 'removed'
                ELSE 'moved' END AS change,
           identity, coalesce(model_now, model_before) AS model,
           coalesce(site_now, site_before) AS site,
           CASE WHEN site_now IS NOT NULL THEN site_before END AS site_before
    FROM changed
    WHERE site_now IS DISTINCT FROM site_before  -- in one month only, or at another site
)
SELECT change, identity, model, site, site_before, count(*) OVER (PARTITION BY change) AS total
FROM listed
QUALIFY row_number() OVER (PARTITION BY change ORDER BY model, site, identity) <= $limit
ORDER BY change, model, site, identity;
