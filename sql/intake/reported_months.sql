-- The months whose report went out to a customer's CSM: a file for such a month is checked
-- against the other months' snapshots (intake/evidence.py).
SELECT DISTINCT customer_id, month
FROM mail_ledger
WHERE kind = 'report' AND status = 'sent' AND customer_id IS NOT NULL;
