-- The rows each data-quality finding of a customer's month snapshot and RMA logs is about, so
-- the report names them (issue 30): per subject and check, how many and the first $limit by
-- row, each with its identity and the value at fault. The rules are those the findings were
-- measured by (sql/raw/measure_staged_snapshots.sql, measure_rma_log.sql), so the names never
-- disagree with the count; an RMA date "in the future" is one after the day its log came in.
WITH rows AS (
    SELECT r.*, c.category
    FROM month_snapshots AS s
    JOIN inventory_rows AS r USING (snapshot_id)
    LEFT JOIN model_classes AS c USING (model_key)
    WHERE s.customer_id = $customer_id AND s.month = $month
),
rmas AS (
    SELECT 'rma:' || r.customer_id || '/' || r.sha256 AS subject, r.row_number,
           'RMA:' || r.rma_key AS identity, r.rma_key, r.rma_date, r.rma_date_text, r.model_key,
           r.serial, (SELECT min(received_at)::DATE FROM intake_log AS i
                      WHERE i.customer_id = r.customer_id AND i.sha256 = r.sha256) AS received
    FROM rma_rows AS r
    WHERE r.customer_id = $customer_id
),
named AS (
    SELECT subject, 'rma_number' AS check_name, row_number, NULL AS identity,
           trim(serial) AS value
    FROM rmas WHERE rma_key IS NULL
    UNION ALL
    SELECT subject, 'rma_date', row_number, identity, rma_date_text FROM rmas
    WHERE rma_date IS NULL
    UNION ALL
    SELECT subject, 'rma_future', row_number, identity, rma_date_text FROM rmas
    WHERE rma_date > received
    UNION ALL
    SELECT subject, 'rma_model', row_number, identity, NULL FROM rmas WHERE model_key IS NULL
    UNION ALL
    SELECT snapshot_id, 'identity', row_number, NULL, model FROM rows WHERE identity IS NULL
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
SELECT subject, check_name, count(*) AS total,
       list({'row': row_number, 'identity': identity, 'value': value}
            ORDER BY row_number)[1:$limit] AS named
FROM named
GROUP BY subject, check_name;
