-- The whole ledger of the warehouse attached as `old` (jobs/rebuild.py), keys as they were; the
-- answer is how many lines. A ledger older than a column leaves it empty.
INSERT INTO mail_ledger BY NAME SELECT * FROM old.mail_ledger;
