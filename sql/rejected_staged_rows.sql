-- The rows of a staged snapshot that do not count, with the reason, for <file>.rejected.csv.
SELECT
    row_number AS "row",
    inventory_reject_reason(device_identity(serial, mac, lens_device_id),
                            normalize_model(model)) AS reason,
    serial, mac, model, site, room, lens_device_id, device_name
FROM staged_inventory
WHERE snapshot_id = $snapshot_id AND reason IS NOT NULL
ORDER BY row_number;
