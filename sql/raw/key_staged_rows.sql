-- The staged rows' keys, computed once per batch (narrow: the rows themselves stay in
-- staged_inventory): the identity of rules.md 2, the normalised model (worked out once per
-- distinct model, not per row), whether serial and MAC look as they should, and the day the
-- row says Lens last saw the device.
CREATE OR REPLACE TEMP TABLE staged_keys AS
WITH models AS (
    SELECT model, normalize_model(model) AS model_key
    FROM (SELECT DISTINCT model FROM staged_inventory)
)
SELECT
    s.rowid AS staged_row,  -- which staged row the keys are of (row numbers repeat in a zip)
    s.snapshot_id,
    device_identity(s.serial, s.mac, s.lens_device_id) AS identity,
    m.model_key,
    odd_serial(s.serial, $serial_pattern) AS odd_serial,
    odd_mac(s.mac, $mac_pattern) AS odd_mac,
    seen_day(s.last_seen) AS last_seen
FROM staged_inventory AS s
LEFT JOIN models AS m ON m.model = s.model;
-- One row per staged device: how often it is listed, its representative model (the least
-- model key, snapshot_devices' rule) and its latest last-seen day among the rows that count.
-- Measuring and the per-model counts both start here.
CREATE OR REPLACE TEMP TABLE staged_devices AS
SELECT snapshot_id, identity, count(*) AS times_listed, min(model_key) AS model_key,
       max(last_seen) FILTER (WHERE model_key IS NOT NULL) AS last_seen
FROM staged_keys
WHERE identity IS NOT NULL
GROUP BY ALL;
