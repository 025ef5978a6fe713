-- The snapshots of an intake batch (from `staged_rows`), their rows already in staged_inventory.
CREATE OR REPLACE TEMP TABLE staged_snapshots AS
SELECT snapshot_id, customer_id, month, previous_month, receipt_seq, received_at, source,
       source_name, sha256, row_count
FROM staged_rows;
