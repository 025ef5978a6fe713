-- Messages that did not go out: rejected by the server, or still queued.
SELECT status, month, kind, coalesce(customer_id, '-'), subject, coalesce(answer, '')
FROM mail_ledger
WHERE status <> 'sent'
ORDER BY status, month, kind, customer_id;
