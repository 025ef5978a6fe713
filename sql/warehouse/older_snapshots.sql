-- Snapshots published before snapshots carried their device and per-model counts.
SELECT count(*) FROM snapshots WHERE devices IS NULL;
