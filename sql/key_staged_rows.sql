-- The staged rows with their keys, computed once here and stored with the rows: the identity
-- of rules.md 2, and the normalised model (worked out once per distinct model, not per row).
CREATE OR REPLACE TEMP TABLE staged_keyed AS
WITH models AS (
    SELECT model, normalize_model(model) AS model_key
    FROM (SELECT DISTINCT model FROM staged_inventory)
)
SELECT
    s.*,
    device_identity(s.serial, s.mac, s.lens_device_id) AS identity,
    m.model_key
FROM staged_inventory AS s
LEFT JOIN models AS m ON m.model = s.model;
