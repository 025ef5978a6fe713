-- The rows of the staged snapshots that do not count, with the reason, for <file>.rejected.csv.
SELECT
    s.snapshot_id,
    s.row_number AS "row",
    inventory_reject_reason(k.identity, k.model_key) AS reason,
    s.serial, s.mac, s.model, s.site, s.room, s.lens_device_id, s.device_name
FROM staged_keys AS k
JOIN staged_inventory AS s ON s.rowid = k.staged_row
WHERE k.identity IS NULL OR k.model_key IS NULL
ORDER BY s.snapshot_id, k.staged_row;
