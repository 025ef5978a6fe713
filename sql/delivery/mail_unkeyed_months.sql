-- The months with ledger lines still keyed by their wording (written before issue 27), and how
-- many each has.
SELECT month, count(*)
FROM mail_ledger
WHERE key_version IS NULL
GROUP BY month
ORDER BY month;
