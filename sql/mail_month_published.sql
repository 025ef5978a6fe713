-- Whether a month's reports already went out (were composed for e-mail): a later upload for
-- that month then sends what changed; a month not yet published waits for its own run.
SELECT count(*) > 0 FROM mail_ledger WHERE kind = 'report' AND month = $month;
