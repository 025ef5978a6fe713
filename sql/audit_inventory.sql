-- Write-audit-publish: the rows of a snapshot just written (not yet committed), as the quality
-- suite sees them: the SQL identity and model rules, and the catalog category.
SELECT
    nullif(upper(trim(r.serial)), '') AS serial_key,
    nullif(upper(regexp_replace(coalesce(r.mac, ''), '[\s:.\-]', '', 'g')), '') AS mac_key,
    r.identity,
    r.model_key,
    CASE WHEN r.model_key IS NOT NULL THEN coalesce(c.category, 'unclassified') END AS category,
    r.identity IS NOT NULL AND row_number() OVER (
        PARTITION BY r.identity ORDER BY r.row_number) > 1 AS listed_before
FROM inventory_rows AS r
LEFT JOIN model_classes AS c USING (model_key)
WHERE r.snapshot_id = $snapshot_id
ORDER BY r.row_number;
