-- One row per staged device (the rows were keyed as they were staged): how often it is listed,
-- and its representative model (the least model key, snapshot_devices' rule). Measuring and
-- the per-model counts both start here.
CREATE OR REPLACE TEMP TABLE staged_devices AS
SELECT snapshot_id, identity, count(*) AS times_listed, min(model_key) AS model_key
FROM staged_inventory
WHERE identity IS NOT NULL
GROUP BY ALL;
