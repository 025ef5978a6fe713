-- Rows staged per snapshot.
SELECT snapshot_id, count(*) FROM staged_inventory GROUP BY snapshot_id;
