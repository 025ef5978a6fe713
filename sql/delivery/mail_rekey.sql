-- The lines keyed by their wording that a message composed now matches (staged_rows: the old
-- key, legacy_key, and the message's own, message_key) take the message's key; a key already in
-- the ledger is never given twice.
UPDATE mail_ledger AS line
SET message_key = staged.message_key, key_version = $key_version
FROM staged_rows AS staged
WHERE line.message_key = staged.legacy_key
  AND line.key_version IS NULL
  AND staged.message_key NOT IN (SELECT message_key FROM mail_ledger);
