-- Corrections sent, newest first: alerts a later reconciliation withdrew or changed.
SELECT month, customer_id, subject
FROM mail_ledger
WHERE kind = 'correction' AND status = 'sent'
ORDER BY sent_at DESC, message_key;
