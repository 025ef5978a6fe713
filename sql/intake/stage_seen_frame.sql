-- The latest last-seen day of an export the Python reader read (`staged_rows.last_seen`), days
-- after $today left out.
INSERT INTO staged_seen
SELECT $snapshot_id, max(day) FILTER (WHERE day <= $today)
FROM (SELECT seen_day(last_seen) AS day FROM staged_rows);
