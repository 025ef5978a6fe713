-- A read-only connection sees one state of the warehouse, so the class of each model it has
-- seen is worked out once, into a TEMP table that stands in for the view of the same name
-- (the temp schema comes first in DuckDB's search path), instead of by every query that joins
-- model_classes: a report reads it in five queries, each paying ~40 ms for the view. (A warehouse
-- file only: DuckLake refuses a temp table named like one of its views.)
CREATE TEMP TABLE model_classes AS SELECT * FROM model_classes;
