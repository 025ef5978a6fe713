-- The month's reports and alerts already sent, oldest first: what a correction or an updated
-- report is measured against. A correction with figures carried the updated report (issue 30).
SELECT message_key, kind, customer_id, topic, subject, recipients, sent_at, figures
FROM mail_ledger
WHERE month = $month AND status = 'sent'
  AND (kind IN ('report', 'true_up', 'rma') OR kind = 'correction' AND figures IS NOT NULL)
ORDER BY sent_at, message_key;
