-- Records read per file by intake/read_export_cells.sql, to compare with the files' lines (blank
-- lines and line breaks inside quotes make record numbers differ from line numbers).
SELECT filename, count(*) FROM export_cells GROUP BY filename;
