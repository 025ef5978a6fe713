-- The latest last-seen day of each file just read (export_cells), for the files in
-- `staged_rows` (path, snapshot_id): the day of each distinct cell, days after $today left out.
INSERT INTO staged_seen
SELECT f.snapshot_id, max(d.day) FILTER (WHERE d.day <= $today)
FROM (SELECT filename, seen_day(cell) AS day
      FROM (SELECT DISTINCT filename, cells[$seen_at] AS cell FROM export_cells)) AS d
JOIN staged_rows AS f ON f.path = d.filename
GROUP BY f.snapshot_id;
