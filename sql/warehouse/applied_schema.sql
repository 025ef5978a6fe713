-- The fingerprint of the schema a warehouse file was last brought up to (connection.py,
-- create_schema); a file without it has none yet.
SELECT applied_schema();
