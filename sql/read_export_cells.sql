-- Staging a CSV export, step 1: each record's cells in file order (DuckDB keeps insertion
-- order, so rowid is the record's position after the header). Strict on purpose: a ragged
-- row or a stray quote raises, and the export is read record by record in Python instead.
CREATE OR REPLACE TEMP TABLE export_cells AS
SELECT [*COLUMNS(*)] AS cells
FROM read_csv($path, header = false, skip = $skip, delim = $delim, quote = '"', escape = '"',
              all_varchar = true, strict_mode = true, null_padding = false,
              auto_detect = false, columns = $columns, max_line_size = $max_line_size);
