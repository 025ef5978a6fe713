-- Whether a delivery attempt (a message as queued at queued_at, after `attempts` answers) is
-- still waiting for its answer in the ledger.
SELECT count(*) > 0
FROM mail_ledger
WHERE message_key = $message_key AND status = 'queued' AND queued_at = $queued_at
  AND attempts = $attempts;
