-- Idempotent partition load, step 2: the snapshot's rows from `staged_rows` (a whole CSV
-- export, or one page of a Lens API pull).
INSERT INTO raw_inventory
SELECT $snapshot_id, row_number, serial, mac, model, site, room, lens_device_id, device_name,
       extra_json
FROM staged_rows;
