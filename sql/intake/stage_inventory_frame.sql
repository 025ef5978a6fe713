-- Staging rows the Python reader (or a Lens pull page) produced, from `staged_rows`.
INSERT INTO staged_inventory
SELECT $snapshot_id, row_number, serial, mac, model, site, room, lens_device_id, device_name,
       last_seen
FROM staged_rows;
