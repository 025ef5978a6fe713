-- The staged rows' keys, computed once per batch (narrow: the rows themselves stay in
-- staged_inventory): the identity of rules.md 2, the normalised model (worked out once per
-- distinct model, not per row), and whether serial and MAC look as they should.
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
    -- a placeholder ("Not Set", "N/A") is no serial, not a bad one
    NOT regexp_full_match(usable_serial(s.serial), $serial_pattern) AS odd_serial,
    -- 12 hex digits among separators, matched as they stand (as fast as the serial's test;
    -- taking the separators out first was four times slower); null without a MAC
    CASE WHEN NOT regexp_full_match(s.mac, '[\s:.\-]*')
         THEN NOT regexp_full_match(s.mac, $mac_pattern) END AS odd_mac
FROM staged_inventory AS s
LEFT JOIN models AS m ON m.model = s.model;
-- One row per staged device: how often it is listed, and its representative model (the least
-- model key, snapshot_devices' rule). Measuring and the per-model counts both start here.
CREATE OR REPLACE TEMP TABLE staged_devices AS
SELECT snapshot_id, identity, count(*) AS times_listed, min(model_key) AS model_key
FROM staged_keys
WHERE identity IS NOT NULL
GROUP BY ALL;
