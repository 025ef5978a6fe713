-- After a failed batch: the staging table starts empty again.
DELETE FROM staged_inventory;
DROP TABLE IF EXISTS staged_keys;
DROP TABLE IF EXISTS staged_devices;
