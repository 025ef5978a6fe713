-- Per customer, the RMA alert last sent for an earlier month of the year (a carried one counts
-- as its correction does), with that month's stored RMA result: what a repeated alert is
-- measured against (issue 30). `corrected`: a correction to the customer went out after it,
-- so the CSM may have been told something else since.
WITH sent AS (
    SELECT line.message_key, line.kind, line.customer_id, line.month, line.recipients,
           coalesce(carrier.sent_at, line.sent_at) AS sent_at
    FROM mail_ledger AS line
    LEFT JOIN mail_ledger AS carrier
           ON line.status = 'carried' AND carrier.message_key = line.answer
    WHERE line.month >= $year_start AND line.month < $month
      AND (line.status = 'sent' OR carrier.status = 'sent')
      AND line.kind IN ('rma', 'correction')
), latest AS (
    SELECT * FROM sent WHERE kind = 'rma'
    QUALIFY row_number() OVER (PARTITION BY customer_id
                               ORDER BY month DESC, sent_at DESC, message_key) = 1
)
SELECT latest.customer_id, latest.month, latest.message_key, latest.recipients,
       latest.sent_at, r.year, r.headset_rmas, r.headset_base, r.rma_rate_pct, r.status,
       EXISTS (SELECT 1 FROM sent AS c
               WHERE c.kind = 'correction' AND c.customer_id = latest.customer_id
                 AND c.month >= latest.month AND c.sent_at > latest.sent_at) AS corrected
FROM latest
JOIN rma_results AS r ON r.customer_id = latest.customer_id AND r.month = latest.month;
