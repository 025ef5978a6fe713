-- Staging the rows of a raw-layer CSV file written by a Lens API pull (columns as RAW_COLUMNS;
-- its extra_json stays in the archived file, but for Lens's `lastDetected`, the last seen).
INSERT INTO staged_inventory
SELECT $snapshot_id, CAST(row_number AS INTEGER), serial, mac, model, site, room,
       lens_device_id, device_name, json_extract_string(extra_json, '$.lastDetected')
FROM read_csv($path, header = true, all_varchar = true, quote = '"', escape = '"',
              delim = ',', strict_mode = true);
