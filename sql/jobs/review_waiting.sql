-- Messages waiting for approval, for the months asked about (every month when NULL) and the
-- customer (every one when NULL), each with the figures of the last version of the report sent
-- for its month and customer (a report, or a correction carrying one): what a waiting report,
-- or a correction carrying one, is compared with.
SELECT w.month, w.customer_id, w.kind, w.subject, w.recipients, w.queued_at, w.figures,
       (SELECT s.figures FROM mail_ledger AS s
        WHERE s.status = 'sent' AND s.kind IN ('report', 'correction') AND s.figures IS NOT NULL
          AND s.month = w.month
          AND s.customer_id IS NOT DISTINCT FROM w.customer_id
        ORDER BY s.sent_at DESC, s.message_key LIMIT 1) AS sent_figures
FROM mail_ledger AS w
WHERE w.status = 'waiting'
  AND (CAST($months AS VARCHAR[]) IS NULL OR list_contains(CAST($months AS VARCHAR[]), w.month))
  AND (CAST($customer_id AS VARCHAR) IS NULL OR w.customer_id = $customer_id)
ORDER BY w.month, w.customer_id,
         list_position(['report', 'true_up', 'rma', 'correction'], w.kind), w.message_key;
