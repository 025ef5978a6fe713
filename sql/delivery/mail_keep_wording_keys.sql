-- The lines keyed by their wording that no message composed now matched keep their key, marked
-- as looked at (1); the answer is how many.
UPDATE mail_ledger SET key_version = 1 WHERE key_version IS NULL;
