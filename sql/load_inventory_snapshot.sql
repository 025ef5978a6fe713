-- Idempotent partition load of one inventory snapshot from the registered `staged_rows`:
-- delete the partition, insert it again (the caller wraps this in one transaction).
DELETE FROM raw_inventory WHERE snapshot_id = $snapshot_id;
DELETE FROM snapshots WHERE snapshot_id = $snapshot_id;
INSERT INTO snapshots
VALUES ($snapshot_id, $customer_id, $month, $receipt_seq, $received_at, $source, $source_name,
        $sha256, $row_count);
INSERT INTO raw_inventory
SELECT $snapshot_id, row_number, serial, mac, model, site, room, lens_device_id, device_name,
       extra_json
FROM staged_rows;
