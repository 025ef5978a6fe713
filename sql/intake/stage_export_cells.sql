-- Staging CSV exports of one layout, step 2, for the files in `staged_rows` (path, snapshot_id,
-- first_row, trim): the fields trimmed as the Python reader trims them, where they may need it
-- (TablePlan.trim); blank records left out but counted in the row numbers (a record with a
-- model is not blank: that cheap test spares the full one almost always).
INSERT INTO staged_inventory
WITH first_records AS (
    SELECT filename, min(rowid) AS first_rowid FROM export_cells GROUP BY filename
),
fields AS (
    SELECT
        f.snapshot_id,
        f.first_row + c.rowid - r.first_rowid AS row_number,
        export_field(c.cells, $serial_at, f.trim, $whitespace) AS serial,
        export_field(c.cells, $mac_at, f.trim, $whitespace) AS mac,
        export_field(c.cells, $model_at, f.trim, $whitespace) AS model,
        export_field(c.cells, $site_at, f.trim, $whitespace) AS site,
        export_field(c.cells, $room_at, f.trim, $whitespace) AS room,
        export_field(c.cells, $lens_device_id_at, f.trim, $whitespace) AS lens_device_id,
        export_field(c.cells, $device_name_at, f.trim, $whitespace) AS device_name,
        export_field(c.cells, $last_seen_at, f.trim, $whitespace) AS last_seen,
        c.cells
    FROM export_cells AS c
    JOIN first_records AS r USING (filename)
    JOIN staged_rows AS f ON f.path = c.filename
)
SELECT * EXCLUDE (cells)
FROM fields
WHERE model <> '' OR trim(array_to_string(cells, ''), $whitespace) <> '';
