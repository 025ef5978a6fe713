-- Records read by read_export_cells.sql (compared with the file's lines: blank lines and line
-- breaks inside quotes make record numbers differ from line numbers).
SELECT count(*) FROM export_cells;
