-- The months whose reports went out (were composed for e-mail), for the missed-run check.
SELECT DISTINCT month FROM mail_ledger WHERE kind = 'report' ORDER BY month;
