-- The rows of a snapshot that do not count, with the reason, for <file>.rejected.csv.
SELECT row_number AS "row", reject_reason AS reason, serial, mac, model, site, room,
       lens_device_id, device_name
FROM inventory_rows
WHERE snapshot_id = $snapshot_id AND reject_reason IS NOT NULL
ORDER BY row_number;
