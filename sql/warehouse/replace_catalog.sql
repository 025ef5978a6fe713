-- The catalog in force for this reconciliation, from `staged_rows`.
DELETE FROM catalog;
INSERT INTO catalog
SELECT model, category, CAST(end_of_service AS DATE), origin, position
FROM staged_rows;
