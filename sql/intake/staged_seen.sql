-- The latest last-seen day of each export staged, where its cells held one.
SELECT snapshot_id, max(latest) FROM staged_seen WHERE latest IS NOT NULL GROUP BY snapshot_id;
