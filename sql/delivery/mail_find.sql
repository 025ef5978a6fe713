-- A message's ledger status, if it was composed before; a carried one has the status of the
-- correction carrying it (withdrawn, if that is gone).
SELECT CASE WHEN line.status = 'carried' THEN coalesce(carrier.status, 'withdrawn')
            ELSE line.status END
FROM mail_ledger AS line
LEFT JOIN mail_ledger AS carrier ON line.status = 'carried' AND carrier.message_key = line.answer
WHERE line.message_key = $message_key;
