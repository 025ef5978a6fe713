-- Distinct devices a snapshot lists (rows with identity and model).
SELECT count(*)
FROM snapshot_devices
WHERE snapshot_id = $snapshot_id;
