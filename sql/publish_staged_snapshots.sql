-- Idempotent partition load, step 2, inside the batch's transaction: the audited snapshots and
-- their rows become visible together; the staging table is left empty for the next batch.
INSERT INTO raw_inventory BY NAME
SELECT * FROM staged_inventory WHERE snapshot_id IN (SELECT snapshot_id FROM staged_snapshots);
INSERT INTO snapshots
SELECT snapshot_id, customer_id, month, receipt_seq, received_at, source, source_name, sha256,
       row_count, devices
FROM staged_measurements;
DELETE FROM staged_inventory;
