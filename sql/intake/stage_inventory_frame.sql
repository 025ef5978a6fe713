-- Staging rows the Python reader (or a Lens pull page) produced, from `staged_rows`, keyed as
-- sql/intake/stage_export_cells.sql keys.
INSERT INTO staged_inventory
SELECT *, device_identity(serial, mac, lens_device_id), normalize_model(model),
       odd_serial(serial), odd_mac(mac)
FROM (SELECT $snapshot_id, CAST(row_number AS INTEGER), -- a column of None arrives as DOUBLE
             serial::VARCHAR AS serial, mac::VARCHAR AS mac, model::VARCHAR AS model,
             site::VARCHAR, room::VARCHAR, lens_device_id::VARCHAR AS lens_device_id,
             device_name::VARCHAR
      FROM staged_rows);
