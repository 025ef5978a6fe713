-- Staging a CSV export, step 2: the fields trimmed as the Python reader trims them, the unused
-- columns as extra_json (0 in extra_at stands for the zip entry's name), blank records left
-- out but counted in the row numbers. Answers with the number of rows staged.
INSERT INTO staged_inventory
SELECT
    $snapshot_id,
    $first_row + rowid,
    export_field(cells, $serial_at, $whitespace),
    export_field(cells, $mac_at, $whitespace),
    export_field(cells, $model_at, $whitespace),
    export_field(cells, $site_at, $whitespace),
    export_field(cells, $room_at, $whitespace),
    export_field(cells, $lens_device_id_at, $whitespace),
    export_field(cells, $device_name_at, $whitespace),
    to_json(map($extra_keys::VARCHAR[],
                list_transform($extra_at::INTEGER[],
                               lambda i: CASE WHEN i = 0 THEN $zip_entry
                                              ELSE coalesce(cells[i], '') END)))
FROM export_cells
WHERE len(list_filter(cells, lambda c: trim(coalesce(c, ''), $whitespace) <> '')) > 0;
