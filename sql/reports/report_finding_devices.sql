-- The rows each data-quality finding of a customer's month snapshot is about, so the report
-- names them (issue 30): per check, how many and the first $limit by row, each with its
-- identity and the value at fault. The rules are rule_macros.sql's, as the findings were
-- measured (sql/raw/measure_staged_snapshots.sql), so the names never disagree with the count.
WITH rows AS (
    SELECT r.*, c.category
    FROM month_snapshots AS s
    JOIN inventory_rows AS r USING (snapshot_id)
    LEFT JOIN model_classes AS c USING (model_key)
    WHERE s.customer_id = $customer_id AND s.month = $month
),
named AS (
    SELECT snapshot_id, 'identity' AS check_name, row_number, NULL AS identity, model AS value
    FROM rows WHERE identity IS NULL
    UNION ALL
    SELECT snapshot_id, 'model', row_number, identity, NULL FROM rows WHERE model_key IS NULL
    UNION ALL
    SELECT snapshot_id, 'serial_format', row_number, identity, trim(serial)
    FROM rows WHERE odd_serial(serial, $serial_pattern)
    UNION ALL
    SELECT snapshot_id, 'mac_format', row_number, identity, trim(mac)
    FROM rows WHERE odd_mac(mac, $mac_pattern)
    UNION ALL
    SELECT snapshot_id, 'unclassified_share', row_number, identity, model
    FROM rows WHERE category = 'unclassified'
    UNION ALL  -- each device listed again, once, at its first row
    SELECT snapshot_id, 'duplicates', min(row_number), identity, NULL
    FROM rows WHERE identity IS NOT NULL GROUP BY snapshot_id, identity HAVING count(*) > 1
)
SELECT snapshot_id, check_name, count(*) AS total,
       list({'row': row_number, 'identity': identity, 'value': value}
            ORDER BY row_number)[1:$limit] AS named
FROM named
GROUP BY snapshot_id, check_name;
