-- Idempotent: one stored result per report month, replaced with the month's reconciliation.
DELETE FROM month_results WHERE month = $month;
INSERT INTO month_results VALUES ($month, $through, $result);
