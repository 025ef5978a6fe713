-- Idempotent partition load, step 1: remove the snapshot's partition if it was loaded before
-- (the caller holds one transaction around the delete and the inserts).
DELETE FROM raw_inventory WHERE snapshot_id = $snapshot_id;
DELETE FROM snapshots WHERE snapshot_id = $snapshot_id;
