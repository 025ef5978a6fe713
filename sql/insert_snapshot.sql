-- Idempotent partition load, step 3: the snapshot itself, once its rows are all in.
INSERT INTO snapshots
VALUES ($snapshot_id, $customer_id, $month, $receipt_seq, $received_at, $source, $source_name,
        $sha256, $row_count);
