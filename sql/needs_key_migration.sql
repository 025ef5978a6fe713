-- A warehouse made before raw rows carried their keys (identity, model_key).
SELECT count(*)
FROM information_schema.columns
WHERE table_name = 'raw_inventory' AND column_name = 'extra_json'
  AND NOT EXISTS (SELECT 1 FROM information_schema.columns
                  WHERE table_name = 'raw_inventory' AND column_name = 'identity');
