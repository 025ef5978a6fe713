-- Whether `staged_rows` differ from the catalog stored: an unchanged catalog is not written
-- again (on DuckLake, writers replacing it side by side would conflict for nothing).
SELECT EXISTS (
    (SELECT model, category, CAST(end_of_service AS DATE), origin, position FROM staged_rows
     EXCEPT ALL
     SELECT model, category, end_of_service, origin, position FROM catalog)
    UNION ALL
    (SELECT model, category, end_of_service, origin, position FROM catalog
     EXCEPT ALL
     SELECT model, category, CAST(end_of_service AS DATE), origin, position FROM staged_rows)
) AS differs;
