-- Everything still to send, oldest first; with what tells one delivery attempt from another
-- (queued_at, attempts: a DuckLake sender claims each, warehouse/lake.py).
SELECT message_key, kind, customer_id, month, message, queued_at, attempts
FROM mail_ledger
WHERE status = 'queued'
ORDER BY queued_at, message_key;
