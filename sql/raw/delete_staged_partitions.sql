-- Idempotent partition load, step 1 (only run for reloads: it scans the raw layer).
DELETE FROM raw_inventory WHERE snapshot_id IN (SELECT snapshot_id FROM staged_snapshots);
DELETE FROM snapshots WHERE snapshot_id IN (SELECT snapshot_id FROM staged_snapshots);
DELETE FROM snapshot_models WHERE snapshot_id IN (SELECT snapshot_id FROM staged_snapshots);
DELETE FROM snapshot_last_seen WHERE snapshot_id IN (SELECT snapshot_id FROM staged_snapshots);
