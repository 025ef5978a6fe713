-- A month's result has seen every snapshot received up to $through (sql/reconcile/stale_months.sql).
DELETE FROM reconciled_months WHERE month = $month;
INSERT INTO reconciled_months VALUES ($month, $through);
