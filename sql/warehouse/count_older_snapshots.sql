-- Once, for snapshots published before the counts were kept with them: count them now.
INSERT INTO snapshot_models
SELECT snapshot_id, model_key, count(*)
FROM snapshot_devices
WHERE snapshot_id IN (SELECT snapshot_id FROM snapshots WHERE devices IS NULL)
GROUP BY ALL;
UPDATE snapshots
SET devices = coalesce((SELECT sum(m.devices) FROM snapshot_models AS m
                        WHERE m.snapshot_id = snapshots.snapshot_id), 0)
WHERE devices IS NULL;
INSERT INTO seen_models
SELECT DISTINCT model_key
FROM inventory_rows
WHERE model_key IS NOT NULL AND model_key NOT IN (SELECT model_key FROM seen_models);
