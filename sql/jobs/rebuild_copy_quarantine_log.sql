-- The quarantined files' intake records of the warehouse attached as `old`, so `status` still
-- lists them (their files are not taken again: they stay in quarantine/ as they are).
INSERT INTO intake_log SELECT * FROM old.intake_log WHERE outcome = 'quarantined';
