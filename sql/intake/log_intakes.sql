-- Lines in the intake ledger for a batch of files (from `staged_rows`, columns as intake_log).
INSERT INTO intake_log BY NAME SELECT * FROM staged_rows;
