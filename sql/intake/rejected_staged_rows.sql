-- The rows of the staged snapshots that do not count, with the reason, for <file>.rejected.csv.
SELECT
    snapshot_id,
    row_number AS "row",
    inventory_reject_reason(identity, model_key) AS reason,
    serial, mac, model, site, room, lens_device_id, device_name
FROM staged_inventory
WHERE identity IS NULL OR model_key IS NULL
ORDER BY snapshot_id, rowid;
