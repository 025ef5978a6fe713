-- Once, for a warehouse made before raw rows carried their keys: compute and store them.
ALTER TABLE raw_inventory ADD COLUMN identity VARCHAR;
ALTER TABLE raw_inventory ADD COLUMN model_key VARCHAR;
UPDATE raw_inventory
SET identity = device_identity(serial, mac, lens_device_id), model_key = normalize_model(model);
INSERT INTO seen_models
SELECT DISTINCT model_key FROM raw_inventory WHERE model_key IS NOT NULL;
INSERT INTO snapshot_models
SELECT snapshot_id, model_key, count(*)
FROM (SELECT snapshot_id, identity, min(model_key) AS model_key FROM raw_inventory
      WHERE identity IS NOT NULL AND model_key IS NOT NULL GROUP BY ALL)
GROUP BY ALL;
