-- Staging CSV exports of one layout, step 1: each record's cells and file, in file order
-- (DuckDB keeps insertion order, so rowid counts records). Strict on purpose: a ragged row or a
-- stray quote raises, and the files are read one by one, or record by record in Python.
CREATE OR REPLACE TEMP TABLE export_cells AS
SELECT filename, [*COLUMNS(* EXCLUDE (filename))] AS cells
FROM read_csv($paths, header = false, skip = $skip, delim = $delim, quote = '"', escape = '"',
              all_varchar = true, strict_mode = true, null_padding = false,
              nullstr = $no_null, allow_quoted_nulls = false, auto_detect = false,
              columns = $columns, max_line_size = $max_line_size, filename = true);
