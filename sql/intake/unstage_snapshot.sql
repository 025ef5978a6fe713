-- A snapshot that turned out unreadable half-way leaves nothing staged.
DELETE FROM staged_inventory WHERE snapshot_id = $snapshot_id;
