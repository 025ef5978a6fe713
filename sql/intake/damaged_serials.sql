-- Serials a spreadsheet turned into numbers, per staged snapshot of the batch ($snapshot_ids
-- with their $customer_ids): scientific notation ("2.01235E+11", "2,01235E+11"), or digits
-- that, with the leading zeros they lack, are a serial of the customer's latest snapshot
-- ("0020123456780" saved as "20123456780"). How many rows, the first one and its cell.
WITH batch AS (
    SELECT unnest($snapshot_ids) AS snapshot_id, unnest($customer_ids) AS customer_id
),
latest AS (
    SELECT customer_id, arg_max(snapshot_id, receipt_seq) AS snapshot_id
    FROM snapshots
    WHERE customer_id IN (SELECT customer_id FROM batch)
    GROUP BY customer_id
),
zero_led AS (
    SELECT DISTINCT l.customer_id, ltrim(r.serial, '0') AS stripped
    FROM raw_inventory AS r
    JOIN latest AS l USING (snapshot_id)
    WHERE regexp_full_match(r.serial, '0+[1-9][0-9]*')
)
SELECT s.snapshot_id, count(*)::INTEGER, min(s.row_number), arg_min(s.serial, s.row_number)
FROM staged_inventory AS s
JOIN batch AS b USING (snapshot_id)
LEFT JOIN zero_led AS z ON z.customer_id = b.customer_id AND z.stripped = s.serial
WHERE z.stripped IS NOT NULL
   OR (contains(s.serial, '+') AND regexp_full_match(s.serial, '[0-9]+([.,][0-9]+)?[eE]\+[0-9]+'))
GROUP BY s.snapshot_id;
