-- A message's ledger status, if it was composed before.
SELECT status FROM mail_ledger WHERE message_key = $message_key;
