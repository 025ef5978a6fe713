-- Write-audit-publish: the rows of a snapshot just written (not yet committed), as the quality
-- suite sees them: the SQL identity and model rules, and the catalog category.
SELECT
    r.row_number,
    nullif(upper(trim(r.serial)), '') AS serial_key,
    nullif(upper(regexp_replace(coalesce(r.mac, ''), '[\s:.\-]', '', 'g')), '') AS mac_key,
    r.identity,
    r.model_key,
    coalesce(c.category, 'unclassified') AS category
FROM inventory_rows AS r
LEFT JOIN model_classes AS c USING (model_key)
WHERE r.snapshot_id = $snapshot_id
ORDER BY r.row_number;
