-- Staged snapshots already published once (a reload): their old partition goes first.
SELECT count(*) FROM snapshots WHERE snapshot_id IN (SELECT snapshot_id FROM staged_snapshots);
