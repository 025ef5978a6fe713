-- Messages that did not go out: rejected by the server, or still queued (not those waiting for
-- approval, listed apart, nor those withdrawn before it).
SELECT status, month, kind, coalesce(customer_id, '-'), subject, coalesce(answer, '')
FROM mail_ledger
WHERE status IN ('queued', 'rejected')
ORDER BY status, month, kind, customer_id;
