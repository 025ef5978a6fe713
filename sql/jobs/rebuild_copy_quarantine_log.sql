-- The quarantined and held files' intake records of the warehouse attached as `old`, so `status`
-- still lists them (their files are not taken again: they stay in quarantine/ as they are), and
-- the approvals of held files, so one put back is not held again.
INSERT INTO intake_log SELECT * FROM old.intake_log
WHERE outcome IN ('quarantined', 'held', 'approved');
