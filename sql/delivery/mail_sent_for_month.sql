-- The month's reports and alerts already sent, oldest first: what a correction or an updated
-- report is measured against. A correction with figures carried the updated report, and the
-- report and alerts it carried count as sent with it (issue 30).
SELECT line.message_key, line.kind, line.customer_id, line.topic, line.subject, line.recipients,
       coalesce(carrier.sent_at, line.sent_at) AS sent_at, line.figures
FROM mail_ledger AS line
LEFT JOIN mail_ledger AS carrier ON line.status = 'carried' AND carrier.message_key = line.answer
WHERE line.month = $month AND (line.status = 'sent' OR carrier.status = 'sent')
  AND (line.kind IN ('report', 'true_up', 'rma')
       OR line.kind = 'correction' AND line.figures IS NOT NULL)
ORDER BY sent_at, line.message_key;
