-- Idempotent partition load, step 2, inside the batch's transaction: the audited snapshots and
-- their rows become visible together; the staging tables are left empty for the next batch.
INSERT INTO raw_inventory BY NAME
SELECT * FROM staged_inventory WHERE snapshot_id IN (SELECT snapshot_id FROM staged_snapshots);
INSERT INTO snapshot_models
SELECT snapshot_id, model_key, count(*)
FROM staged_devices
WHERE model_key IS NOT NULL AND snapshot_id IN (SELECT snapshot_id FROM staged_snapshots)
GROUP BY ALL;
INSERT INTO snapshot_last_seen
SELECT snapshot_id, model_key, last_seen, count(*)
FROM staged_devices
WHERE model_key IS NOT NULL AND last_seen IS NOT NULL
  AND snapshot_id IN (SELECT snapshot_id FROM staged_snapshots)
GROUP BY ALL;
INSERT INTO seen_models
SELECT DISTINCT model_key FROM staged_keys
WHERE model_key IS NOT NULL AND model_key NOT IN (SELECT model_key FROM seen_models);
INSERT INTO snapshots
SELECT snapshot_id, customer_id, month, receipt_seq, received_at, source, source_name, sha256,
       row_count, devices
FROM staged_measurements;
DELETE FROM staged_inventory;
DROP TABLE staged_keys;
DROP TABLE staged_devices;
