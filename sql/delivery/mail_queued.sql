-- Everything still to send, oldest first.
SELECT message_key, kind, customer_id, month, message
FROM mail_ledger
WHERE status = 'queued'
ORDER BY queued_at, message_key;
