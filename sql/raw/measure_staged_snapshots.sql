-- Write-audit-publish: the quality measurements of each staged snapshot, one row per snapshot,
-- from its rows' keys (sql/raw/key_staged_rows.sql) and the catalog, for the GX suite.
-- The previous month's devices are those of the customer's snapshot for that month as it stood
-- when this one was received: published before, or earlier in the same batch.
CREATE OR REPLACE TEMP TABLE staged_measurements AS
WITH classes AS (
    SELECT model_key, coalesce(model_class(model_key).category, 'unclassified') AS category
    FROM (SELECT DISTINCT model_key FROM staged_keys WHERE model_key IS NOT NULL)
),
measured_rows AS (
    SELECT
        k.snapshot_id,
        count(*) AS rows,
        count(*) FILTER (WHERE k.identity IS NULL) AS without_identity,
        count(*) FILTER (WHERE k.model_key IS NULL) AS without_model,
        count(*) FILTER (WHERE k.odd_serial) AS odd_serials,
        count(*) FILTER (WHERE k.odd_mac) AS odd_macs,
        count(*) FILTER (WHERE c.category = 'unclassified') AS unclassified,
        count(*) FILTER (WHERE c.category = 'not_counted') AS not_counted
    FROM staged_keys AS k
    LEFT JOIN classes AS c USING (model_key)
    GROUP BY k.snapshot_id
),
measured_devices AS (
    SELECT
        snapshot_id,
        sum(times_listed) - count(*) AS listed_again,
        count(*) FILTER (WHERE model_key IS NOT NULL) AS devices
    FROM staged_devices
    GROUP BY snapshot_id
),
measured AS (
    SELECT * FROM measured_rows LEFT JOIN measured_devices USING (snapshot_id)
),
counted AS (  -- a snapshot without rows has no measured row: all its counts are 0
    SELECT
        s.*,
        coalesce(m.rows, 0) AS rows,
        coalesce(m.without_identity, 0) AS without_identity,
        coalesce(m.without_model, 0) AS without_model,
        coalesce(m.odd_serials, 0) AS odd_serials,
        coalesce(m.odd_macs, 0) AS odd_macs,
        coalesce(m.listed_again, 0) AS listed_again,
        coalesce(m.unclassified, 0) AS unclassified,
        coalesce(m.not_counted, 0) AS not_counted,
        coalesce(m.devices, 0) AS devices
    FROM staged_snapshots AS s
    LEFT JOIN measured AS m USING (snapshot_id)
),
earlier AS (
    SELECT customer_id, month, receipt_seq, devices FROM snapshots
    UNION ALL
    SELECT customer_id, month, receipt_seq, devices FROM counted
)
SELECT
    c.snapshot_id AS subject,
    c.*,
    -- of the rows that could count: accessories and software never hide a catalog gap
    c.unclassified / nullif(c.rows - c.not_counted, 0) AS unclassified_share,
    e.devices AS previous_devices,
    CASE WHEN e.devices >= $suspect_minimum THEN ceil(e.devices * $suspect_drop)::INTEGER
    END AS suspect_below
FROM counted AS c
ASOF LEFT JOIN earlier AS e
    ON e.customer_id = c.customer_id AND e.month = c.previous_month
   AND c.receipt_seq > e.receipt_seq
ORDER BY c.receipt_seq;
SELECT * FROM staged_measurements ORDER BY receipt_seq;
