-- The latest last-seen day of an export the Python reader read (`staged_rows.last_seen`), days
-- after $today left out. (Cast: pandas types the column of an export without rows as a number.)
INSERT INTO staged_seen
SELECT $snapshot_id, max(day) FILTER (WHERE day <= $today)
FROM (SELECT seen_day(CAST(last_seen AS VARCHAR)) AS day FROM staged_rows);
